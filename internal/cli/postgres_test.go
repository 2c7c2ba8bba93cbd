package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
)

// The commands that work on the stores directly (gc, audit, keys) against
// PostgreSQL: each test has a schema of its own on the server that
// development machines and CI run.

// pgSchema returns a DSN selecting an empty schema of the test's own,
// dropped when it ends.
func pgSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, "berth_cli")
}

// pgEnv is the environment of a replica on dsn: BERTH_DB and the key
// encryption key.
func pgEnv(dsn string) map[string]string {
	return map[string]string{"BERTH_DB": dsn, "BERTH_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))}
}

func pgOpen(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// noSQLite checks that a command told to use PostgreSQL left no SQLite
// metadata in the data folder.
func noSQLite(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, metadataFile)); !os.IsNotExist(err) {
		t.Errorf("the command opened SQLite in %s instead of PostgreSQL (%v)", dir, err)
	}
}

// oldBlob stores content in the data folder's blob store, last written two
// hours ago.
func oldBlob(t *testing.T, dir string, content []byte) berth.Digest {
	t.Helper()
	store, err := disk.New(filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	d := berth.DigestOf("", content)
	if _, err := store.Put(t.Context(), d, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	err = filepath.WalkDir(store.Root(), func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == d.Encoded() {
			err = os.Chtimes(path, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGCOnPostgres(t *testing.T) {
	t.Parallel()
	dsn, dir := pgSchema(t), t.TempDir()
	env := pgEnv(dsn)
	db := pgOpen(t, dsn)
	d := oldBlob(t, dir, []byte("orphan layer"))
	if err := db.LinkBlob(t.Context(), berth.BlobLink{Repository: "team/app", Digest: d, Size: 12, Created: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	gc := func(args ...string) (int, gcOutput, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, append([]string{"gc", "--data", dir, "--grace", "1h", "-o", "json"}, args...)...)
		var out gcOutput
		if code == 0 {
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Errorf("gc printed %q: %v", stdout, err)
			}
		}
		return code, out, stdout + stderr
	}

	if code, out, stderr := gc("--dry-run"); code != 0 || len(out.Links) != 1 || len(out.Blobs) != 1 {
		t.Fatalf("dry run: exit %d, %+v, %s", code, out, stderr)
	}
	// Without --blobs, a data folder with no storage: refused, not an empty
	// store of its own that would drop every link; nothing is created.
	empty := filepath.Join(t.TempDir(), "elsewhere")
	if code, _, stderr := runCLI(t, env, "gc", "--data", empty, "--grace", "1h"); code != 1 || !strings.Contains(stderr, "[invalid]") || !strings.Contains(stderr, "--blobs") {
		t.Fatalf("gc --db without --blobs or storage: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("gc created %s", empty)
	}
	if _, err := db.FindBlobLink(t.Context(), "team/app", d); err != nil {
		t.Fatalf("the refused collection removed the link: %v", err)
	}
	// A replica is collecting: berth gc refuses rather than collect beside it.
	job, ok, err := db.TryLock(t.Context(), "gc")
	if err != nil || !ok {
		t.Fatalf("take the gc job lock: %v %v", ok, err)
	}
	code, _, stderr := gc()
	job.Release()
	if code == 0 || !strings.Contains(stderr, "another berth is collecting") {
		t.Fatalf("gc beside a replica's collection: exit %d, %s", code, stderr)
	}
	// A replica commits the blob: the collection waits for it, on the
	// database's commit lock, before it deletes the bytes.
	commits, err := db.CommitLocker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer commits.Close()
	unlock, err := commits.LockShared(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code   int
		out    gcOutput
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, stderr := gc()
		done <- result{code, out, stderr}
	}()
	select {
	case r := <-done:
		t.Fatalf("gc deleted a blob a replica was committing: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
	unlock()
	r := <-done
	if r.code != 0 || len(r.out.Links) != 1 || len(r.out.Blobs) != 1 || r.out.Blobs[0].ID != d.String() {
		t.Fatalf("gc: exit %d, %+v, %s", r.code, r.out, r.stderr)
	}
	if _, err := db.FindBlobLink(t.Context(), "team/app", d); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Errorf("the link is still in PostgreSQL: %v", err)
	}
	noSQLite(t, dir)
}

func TestAuditOnPostgres(t *testing.T) {
	t.Parallel()
	dsn, dir := pgSchema(t), t.TempDir()
	db := pgOpen(t, dsn)
	now := time.Now()
	events := sampleAudit(now)
	for _, ev := range events {
		if err := db.AppendAuditEvents(t.Context(), []berth.AuditEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
	env := pgEnv(dsn)
	delete(env, "BERTH_DB") // the flag this time
	code, stdout, stderr := runCLI(t, env, "audit", "--data", dir, "--db", dsn, "--result", "denied", "-o", "json")
	var got []berth.AuditEvent
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || len(got) != 2 || got[0].Reason != berth.CodeRoleMissing {
		t.Fatalf("audit --result denied: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, env, "audit", "verify", "--data", dir, "--db", dsn, "-o", "json")
	var v api.AuditVerification
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || !v.Verified || v.Events != int64(len(events)) {
		t.Fatalf("audit verify: exit %d, %s %s", code, stdout, stderr)
	}
	pgtest.Exec(t, dsn, `UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2`)
	code, _, stderr = runCLI(t, env, "audit", "verify", "--data", dir, "--db", dsn)
	if code == 0 || !strings.Contains(stderr, string(berth.CodeAuditTampered)) {
		t.Fatalf("audit verify after an edit: exit %d, %s", code, stderr)
	}
	noSQLite(t, dir)
}

func TestKeysOnPostgres(t *testing.T) {
	t.Parallel()
	dsn, dir := pgSchema(t), t.TempDir()
	env := pgEnv(dsn)
	keys := func(args ...string) []api.Key {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, append(append([]string{"keys"}, args...), "--data", dir, "-o", "json")...)
		if code != 0 {
			t.Fatalf("keys %v: exit %d: %s", args, code, stderr)
		}
		var out []api.Key
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("keys %v: %v: %s", args, err, stdout)
		}
		return out
	}
	first := keys("list")
	if len(first) != 1 || !first[0].Signing {
		t.Fatalf("a new database has one signing key: %+v", first)
	}
	// A replica listens for changes.
	db := pgOpen(t, dsn)
	notified := make(chan string, 16)
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go db.Listen(ctx, func(what string) { notified <- what }, func(err error) { t.Log(err) }, ready)
	<-ready

	rotated := keys("rotate")
	if len(rotated) != 2 || rotated[0].ID != first[0].ID || rotated[0].RetiredAt == nil || !rotated[1].Signing {
		t.Fatalf("after rotate the old key is retired and a new one signs: %+v", rotated)
	}
	select {
	case what := <-notified:
		if what != postgres.PayloadKeys {
			t.Errorf("the replicas were told %q, want %q", what, postgres.PayloadKeys)
		}
	case <-time.After(5 * time.Second):
		t.Error("the replicas were not notified of the rotation")
	}
	if again := keys("list"); len(again) != 2 || again[1].ID != rotated[1].ID {
		t.Fatalf("the rotation is not in the database: %+v", again)
	}
	// The keys are the database's, sealed: none in the data folder, none in clear.
	if _, err := os.Stat(filepath.Join(dir, keysDir)); !os.IsNotExist(err) {
		t.Errorf("keys were written to the data folder: %v", err)
	}
	var sealed []byte
	if err := db.Pool().QueryRow(t.Context(), `SELECT sealed FROM signing_keys LIMIT 1`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(`"d"`)) {
		t.Error("a private key is stored in clear")
	}
	noSQLite(t, dir)

	// Without the key encryption key nothing is opened.
	code, _, stderr := runCLI(t, map[string]string{"BERTH_DB": dsn}, "keys", "rotate", "--data", dir)
	if code == 0 || !strings.Contains(stderr, "openssl rand -base64 32") {
		t.Errorf("keys rotate without the key encryption key: exit %d, %s", code, stderr)
	}
}

// TestAdminRecoverOnPostgres: berth admin recover --db works on the
// replicas' database, writing the credentials in the current folder when no
// data folder is named, and every replica accepts them.
func TestAdminRecoverOnPostgres(t *testing.T) {
	dsn := pgSchema(t)
	env := pgEnv(dsn)
	s := startServeEnv(t, env, t.TempDir())
	s.stop(t)
	t.Chdir(t.TempDir())
	code, stdout, stderr := runCLI(t, env, "admin", "recover", "--db", dsn, "--principal", "ops", "-o", "json")
	var out recoveredAdmin
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out.File != "recovered-admin.json" || !out.Created || !out.Assigned {
		t.Fatalf("admin recover --db: exit %d %s %s", code, stdout, stderr)
	}
	if fi, err := os.Stat(out.File); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v", out.File, err)
	}
	var file recoveredAdmin
	b, _ := os.ReadFile(out.File)
	if err := json.Unmarshal(b, &file); err != nil || file.ClientSecret == "" {
		t.Fatalf("%s: %s", out.File, b)
	}
	s = startServeEnv(t, env, t.TempDir())
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(file.ClientID+":"+file.ClientSecret))
	if resp, body := s.do(t, "GET", "/api/v1/principals", map[string]string{"Authorization": auth}, nil); resp.StatusCode != 200 {
		t.Errorf("the recovered owner on a replica: %d %s", resp.StatusCode, body)
	}
}
