package cli

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/upstreamtest"
)

// upstreamWithCredential starts berth with upstream hub holding user bot's
// password, and returns the server, the admin environment and the password.
func upstreamWithCredential(t *testing.T, extra ...string) (*running, map[string]string, string) {
	t.Helper()
	const password = "pw-Zq81xKv3"
	up := upstreamtest.New(t, "bot", password)
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	args := append([]string{"create", "hub", "--url", up.URL, "--namespace", "hub", "--username", "bot", "--password-stdin"}, extra...)
	if code, _, stderr := runUpstreamCLI(t, env, password+"\n", "json", args...); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	return s, env, password
}

// A stored credential goes only to the host it was given for: an update of
// the URL alone to another host is refused, and that host never sees it.
// With a new credential (or none) the host may change.
func TestUpstreamUpdateKeepsTheCredentialWithItsHost(t *testing.T) {
	_, env, _ := upstreamWithCredential(t)
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="other"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(other.Close)
	code, _, stderr := runUpstreamCLI(t, env, "", "json", "update", "hub", "--url", other.URL)
	if code != 1 || !strings.HasPrefix(stderr, "invalid:") || !strings.Contains(stderr, "--password-stdin") {
		t.Fatalf("update --url to another host with the old credential: exit %d, %s", code, stderr)
	}
	runCLI(t, env, "upstream", "verify", "hub")
	mu.Lock()
	for _, a := range seen {
		if a != "" {
			t.Errorf("the other host received credentials: %q", a)
		}
	}
	mu.Unlock()
	if code, _, stderr = runUpstreamCLI(t, env, "", "json", "update", "hub", "--url", other.URL, "--anonymous"); code != 0 {
		t.Fatalf("update --url --anonymous: exit %d, %s", code, stderr)
	}
	// Now the other host is asked, and without credentials.
	runCLI(t, env, "upstream", "verify", "hub")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("verify after the move did not call the new host")
	}
	for _, a := range seen {
		if a != "" {
			t.Errorf("the new host received credentials: %q", a)
		}
	}
}

// A stored credential that cannot be opened (not sealed, or sealed with a
// key this server lacks) is replaced by the command its refusal names.
func TestUpstreamUpdateReplacesAnUnopenableCredential(t *testing.T) {
	s, env, password := upstreamWithCredential(t)
	db, err := sql.Open("sqlite", filepath.Join(s.dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE upstreams SET password = 'not-sealed' WHERE name = 'hub'`); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runUpstreamCLI(t, env, "", "text", "update", "hub", "--tag-ttl", "2h")
	if code != 1 || !strings.HasPrefix(stderr, "invalid:") || !strings.Contains(stderr, "berth upstream update hub --username U --password-stdin") {
		t.Fatalf("an update keeping an unopenable credential: exit %d, %s", code, stderr)
	}
	if code, _, stderr = runUpstreamCLI(t, env, password+"\n", "text", "update", "hub", "--username", "bot", "--password-stdin"); code != 0 {
		t.Fatalf("the refusal's own command: exit %d, %s", code, stderr)
	}
	if code, stdout, _ := runCLI(t, env, "upstream", "verify", "hub"); code != 0 || !strings.Contains(stdout, "✓") {
		t.Errorf("verify after the credential was replaced: exit %d, %s", code, stdout)
	}
}

// An update that keeps the credential keeps its recorded expiry, even once
// that date has passed (when owners come to fix things).
func TestUpstreamUpdateAfterTheRecordedExpiry(t *testing.T) {
	offset := moveServeClock(t)
	expires := time.Now().AddDate(0, 0, 2).UTC().Format("2006-01-02")
	_, env, _ := upstreamWithCredential(t, "--expires-at", expires)
	offset.Store(int64(5 * 24 * time.Hour))
	code, stdout, stderr := runUpstreamCLI(t, env, "", "json", "update", "hub", "--tag-ttl", "2h")
	if u := decodeJSON[map[string]any](t, stdout); code != 0 || !strings.HasPrefix(fmt.Sprint(u["expires_at"]), expires) || u["tag_ttl"] != "2h0m0s" {
		t.Fatalf("update --tag-ttl after the recorded expiry: exit %d, %s %s", code, stdout, stderr)
	}
}
