package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// moveServeClock makes serveNow run offset ahead, from now until the test ends.
func moveServeClock(t *testing.T) *atomic.Int64 {
	t.Helper()
	offset := new(atomic.Int64)
	serveNow = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	t.Cleanup(func() { serveNow = time.Now })
	return offset
}

// TestInitialAdminExpiry: the first admin's secret says when it expires, and
// berth serve warns in its log and in /metrics as that nears (30, 7, 1 day)
// and says what to do once it has lapsed.
func TestInitialAdminExpiry(t *testing.T) {
	offset := moveServeClock(t)
	dir := t.TempDir()
	s := startServe(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "initial-admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		ExpiresAt time.Time `json:"expires_at"`
		Note      string    `json:"note"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(file.ExpiresAt); left < 89*24*time.Hour || left > 91*24*time.Hour {
		t.Fatalf("initial-admin.json expires_at = %s, want in 90 days", file.ExpiresAt)
	}
	if !strings.Contains(file.Note, "berth admin recover") {
		t.Errorf("initial-admin.json's note does not name the recovery: %q", file.Note)
	}
	metric := func(s *running, name string) string {
		t.Helper()
		resp, body := s.do(t, "GET", "/metrics", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d", resp.StatusCode)
		}
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("/metrics has no %s", name)
		}
		return m[1]
	}
	if got := metric(s, "berth_owner_secret_warning_days"); got != "0" {
		t.Errorf("90 days ahead: berth_owner_secret_warning_days = %s, want 0", got)
	}
	if strings.Contains(s.stderr.String(), "expires soon") {
		t.Errorf("a fresh admin secret was warned about:\n%s", s.stderr.String())
	}
	s.stop(t)

	for _, c := range []struct {
		at   time.Duration // on the server's clock, after the first start
		want string        // berth_owner_secret_warning_days
		log  string
	}{
		{61 * 24 * time.Hour, "30", "days_left=28"},
		{84 * 24 * time.Hour, "7", "days_left=5"},
		{89*24*time.Hour + time.Hour, "1", "days_left=0"},
	} {
		offset.Store(int64(c.at))
		s := startServe(t, dir)
		if got := metric(s, "berth_owner_secret_warning_days"); got != c.want {
			t.Errorf("%s on: berth_owner_secret_warning_days = %s, want %s", c.at, got, c.want)
		}
		s.stop(t)
		if log := s.stderr.String(); !strings.Contains(log, "expires soon") || !strings.Contains(log, c.log) || !strings.Contains(log, "berth secret add admin") {
			t.Errorf("%s on: the log does not warn with %s and the fix:\n%s", c.at, c.log, log)
		}
	}
	offset.Store(int64(91 * 24 * time.Hour))
	s = startServe(t, dir)
	s.stop(t)
	if log := s.stderr.String(); !strings.Contains(log, "nobody can manage the registry") || !strings.Contains(log, "berth admin recover --data "+dir) {
		t.Errorf("with the admin's secret lapsed, the log does not name berth admin recover:\n%s", log)
	}
}

// TestAdminRecover: with every owner locked out (the admin's secret lapsed,
// then the admin deleted), berth admin recover --data DIR gives admin a new
// secret that works at once on the running server, in a 0600 file, and
// records it in the audit log.
func TestAdminRecover(t *testing.T) {
	offset := moveServeClock(t)
	dir := t.TempDir()
	s := startServe(t, dir)
	oldID, oldSecret := s.admin(t)
	recoverAdmin := func(args ...string) recoveredAdmin {
		t.Helper()
		code, stdout, stderr := runCLI(t, nil, append([]string{"admin", "recover", "--data", dir, "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("admin recover: exit %d\n%s%s", code, stdout, stderr)
		}
		var out recoveredAdmin
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.ClientSecret != "" || out.File == "" {
			t.Fatalf("admin recover -o json printed %s (%v): it names the file and never the secret", stdout, err)
		}
		fi, err := os.Stat(out.File)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", out.File, err, fi.Mode().Perm())
		}
		var file recoveredAdmin
		b, _ := os.ReadFile(out.File)
		if err := json.Unmarshal(b, &file); err != nil || file.ClientSecret == "" || file.ClientID != out.ClientID {
			t.Fatalf("%s holds %s", out.File, b)
		}
		out.ClientSecret = file.ClientSecret
		return out
	}
	// The server's clock passes the admin's expiry: nobody can manage it.
	offset.Store(int64(91 * 24 * time.Hour))
	env := map[string]string{envURL: s.url, envClientID: oldID, envClientSecret: oldSecret, "HOME": t.TempDir()}
	if code, stdout, _ := runCLI(t, env, "principal", "list", "-o", "json"); code != 1 || jsonErrorCode(t, stdout) != "secret_expired" {
		t.Fatalf("the lapsed admin secret still works: %d %s", code, stdout)
	}

	r := recoverAdmin()
	if r.Name != "admin" || r.ClientID != oldID || r.Created || r.Enabled || r.Assigned {
		t.Errorf("recovering an admin that is only locked out: %+v", r)
	}
	if r.File != filepath.Join(dir, "recovered-admin.json") {
		t.Errorf("file = %s, want it in the data folder", r.File)
	}
	// The server accepts the new secret (started afresh here: a running one
	// takes up to oauth.StateTTL, on the real clock, to see it)…
	r = recoverAdmin("--expires-in", "365d")
	s.stop(t)
	s = startServe(t, dir)
	env[envURL], env[envClientSecret] = s.url, r.ClientSecret
	if code, stdout, stderr := runCLI(t, env, "principal", "show", "admin", "-o", "json"); code != 0 {
		t.Fatalf("principal show admin with the recovered secret: %d %s %s", code, stdout, stderr)
	}
	// …and the recovery is in the audit log.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, stdout, _ := runCLI(t, env, "audit", "--action", "admin.recover", "-o", "json")
		var events []map[string]any
		if code == 0 && json.Unmarshal([]byte(stdout), &events) == nil && len(events) == 2 {
			if events[1]["actor"] != "break-glass" || events[1]["target"] != "admin" {
				t.Errorf("the recovery's audit event: %+v", events[1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit --action admin.recover: %d %s", code, stdout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stop(t)

	// With admin deleted (through another owner, itself then disabled),
	// recover creates admin again as owner of the registry.
	s = startServe(t, dir)
	env[envURL] = s.url
	for _, args := range [][]string{{"principal", "create", "ops"}, {"role", "assign", "--principal", "ops", "--role", "owner", "--scope", "registry"}} {
		if code, stdout, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, env, "secret", "add", "ops", "--expires-in", "365d", "-o", "json")
	var ops struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &ops) != nil {
		t.Fatalf("secret add ops: %s", stdout)
	}
	opsEnv := map[string]string{envURL: s.url, envClientID: "ops", envClientSecret: ops.Value, "HOME": env["HOME"]}
	if code, stdout, stderr := runCLI(t, opsEnv, "principal", "delete", "admin"); code != 0 {
		t.Fatalf("delete admin: %s%s", stdout, stderr)
	}
	s.stop(t)
	r = recoverAdmin("--expires-in", "365d")
	if !r.Created || !r.Assigned || r.ClientID == oldID {
		t.Errorf("recovering a deleted admin: %+v, want it created again as owner", r)
	}
	s = startServe(t, dir)
	env = map[string]string{envURL: s.url, envClientID: r.ClientID, envClientSecret: r.ClientSecret, "HOME": env["HOME"]}
	if code, stdout, stderr := runCLI(t, env, "principal", "show", "admin", "-o", "json"); code != 0 || !strings.Contains(stdout, `"owner"`) {
		t.Fatalf("the re-created admin: %d %s %s", code, stdout, stderr)
	}
}

// TestAdminRecoverNeedsTheStores: recover never guesses a data folder, and
// never creates one.
func TestAdminRecoverNeedsTheStores(t *testing.T) {
	t.Chdir(t.TempDir())
	home := t.TempDir()
	code, stdout, _ := runCLI(t, map[string]string{"HOME": home}, "admin", "recover", "-o", "json")
	if code != 1 || jsonErrorCode(t, stdout) != "invalid" {
		t.Errorf("admin recover without --data: %d %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, map[string]string{"HOME": home}, "admin", "recover", "--data", "nowhere", "-o", "json")
	if code != 1 || jsonErrorCode(t, stdout) != "not_found" {
		t.Errorf("admin recover --data nowhere: %d %s", code, stdout)
	}
	if _, err := os.Stat("nowhere"); !os.IsNotExist(err) {
		t.Errorf("admin recover created the folder it was pointed at")
	}
}

// The commands berth admin recover prints name the server as it is reached:
// its url, or its loopback listen address over plain http; a placeholder
// only when neither tells.
func TestRecoverURL(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "https://registry.example.com", Addr: "0.0.0.0:443"}, "https://registry.example.com"},
		{Config{Addr: "127.0.0.1:5000"}, "http://127.0.0.1:5000"},
		{Config{Addr: "[::1]:5000"}, "http://[::1]:5000"},
		{Config{Addr: "0.0.0.0:5000"}, "https://REGISTRY"},
		{Config{Addr: "127.0.0.1:5000", DB: "postgres://db.internal/berth"}, "https://REGISTRY"}, // the replicas' address is not known here
		{Config{Addr: "127.0.0.1:5443", TLS: TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}}, "https://127.0.0.1:5443"},
	} {
		if got := recoverURL(tc.cfg); got != tc.want {
			t.Errorf("recoverURL(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
