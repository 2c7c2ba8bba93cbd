package cli

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestServeRestrictsTheDataFolder: a data folder and database left readable
// by others (an existing folder, a lax umask) are restricted to their owner
// at start, the database's -wal and -shm files included.
func TestServeRestrictsTheDataFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dir)
	s.stop(t)
	for _, p := range []string{dir, filepath.Join(dir, metadataFile)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s = startServe(t, dir)
	defer s.stop(t)
	mode := func(p string) os.FileMode {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return info.Mode().Perm()
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("data folder %v, want 0700", m)
	}
	for _, name := range []string{metadataFile, metadataFile + "-wal", metadataFile + "-shm", pepperFile, initialAdminFile} {
		if m := mode(filepath.Join(dir, name)); m&0o077 != 0 {
			t.Errorf("%s: %v, readable by others", name, m)
		}
	}
}

// TestPlainWebhookSecretsSealedAtStart: a webhook secret stored before a key
// encryption key was configured is sealed when berth next starts with one,
// and keeps its value.
func TestPlainWebhookSecretsSealedAtStart(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	created := createWebhook(t, s)
	s.stop(t)
	if stored := storedWebhookSecret(t, dir, created.ID); stored != created.Secret {
		t.Fatalf("without a key the secret is stored as %.20q…, want it in plain text", stored)
	}

	kek := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	s = startServeEnv(t, map[string]string{"BERTH_KEY_ENCRYPTION_KEY": kek}, dir)
	s.stop(t)
	wantWebhookSecretSealed(t, dir, kek, created)
}

// createdWebhook is the answer to a webhook's creation.
type createdWebhook struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// createWebhook creates a webhook on s and returns its id and secret.
func createWebhook(t *testing.T, s *running) createdWebhook {
	t.Helper()
	resp, body := s.do(t, "POST", "/api/v1/webhooks", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"url":"http://127.0.0.1:9/hook","events":["secret.expiring"]}`))
	var created createdWebhook
	if resp.StatusCode != 201 || json.Unmarshal(body, &created) != nil || !strings.HasPrefix(created.Secret, "brw_") {
		t.Fatalf("create webhook: %d %s", resp.StatusCode, body)
	}
	return created
}

// storedWebhookSecret reads the secret column of webhook id in the data
// folder dir's database, as someone with a copy of it would.
func storedWebhookSecret(t *testing.T, dir, id string) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored string
	if err := db.QueryRowContext(context.Background(), "SELECT secret FROM webhooks WHERE id = ?", id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	return stored
}

// TestWebhookSecretsSealed: with a key encryption key, a webhook's signing
// secret is stored sealed; berth reads it back whole.
func TestWebhookSecretsSealed(t *testing.T) {
	dir := t.TempDir()
	kek := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	s := startServeEnv(t, map[string]string{"BERTH_KEY_ENCRYPTION_KEY": kek}, dir)
	created := createWebhook(t, s)
	s.stop(t)
	wantWebhookSecretSealed(t, dir, kek, created)
}

// wantWebhookSecretSealed checks that the data folder dir stores the secret
// of the webhook created sealed, and that berth with kek reads it back whole.
func wantWebhookSecretSealed(t *testing.T, dir, kek string, created createdWebhook) {
	t.Helper()
	if stored := storedWebhookSecret(t, dir, created.ID); !strings.HasPrefix(stored, sealedPrefix) || strings.Contains(stored, created.Secret[4:]) {
		t.Errorf("stored secret %.20q…, want it sealed", stored)
	}
	st, err := openServed(context.Background(), Config{Data: dir, KeyEncryptionKey: kek}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := withSealedWebhooks(st.meta, st.sealer).FindWebhookByID(context.Background(), created.ID)
	if err != nil || w.Secret.Reveal() != created.Secret {
		t.Errorf("read back: %v, secret matches: %v", err, w.Secret.Reveal() == created.Secret)
	}
}
