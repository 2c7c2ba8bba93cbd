package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api"
)

// adminEnv is the environment of an admin CLI run against s, from a folder
// that is not the server's: BERTH_URL and the first admin's credentials, and
// a home with no stored login.
func adminEnv(t *testing.T, s *running) map[string]string {
	t.Helper()
	id, secret := s.admin(t)
	home := t.TempDir()
	return map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret, "HOME": home, "XDG_CONFIG_HOME": home}
}

// TestAdminCommandsRemote runs berth keys, gc and audit from a folder that is
// not the server's, with BERTH_URL and an owner's credentials: each acts on
// the running server through /api/v1, and no data folder appears where the
// command ran.
func TestAdminCommandsRemote(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	t.Chdir(t.TempDir())
	run := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, append(args, "-o", "json")...)
		if code != 0 {
			t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}

	var before []api.Key
	if err := json.Unmarshal([]byte(run("keys", "list")), &before); err != nil || len(before) != 1 || !before[0].Signing {
		t.Fatalf("keys list: %v %+v", err, before)
	}
	var after []api.Key
	if err := json.Unmarshal([]byte(run("keys", "rotate")), &after); err != nil || len(after) != 2 || after[0].ID != before[0].ID || !after[1].Signing {
		t.Fatalf("keys rotate: %v %+v", err, after)
	}
	// The server itself signs with the new key at once: its JWKS publishes it
	// and a token it issues now names it.
	resp, jwks := s.do(t, "GET", "/oauth2/jwks", map[string]string{"Authorization": ""}, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(jwks), after[1].ID) {
		t.Fatalf("the server's JWKS lacks the rotated key %s: %d %s", after[1].ID, resp.StatusCode, jwks)
	}
	resp, tok := s.do(t, "GET", "/oauth2/token?service=berth", nil, nil)
	var tr struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(tok, &tr) != nil {
		t.Fatalf("token: %d %s", resp.StatusCode, tok)
	}
	if kid := jwtHeaderKID(t, tr.Token); kid != after[1].ID {
		t.Errorf("a token issued after the rotation is signed by %s, want the new key %s", kid, after[1].ID)
	}

	// An orphan blob for the collection, which the server runs and whose
	// progress it streams to the command's stderr.
	blob := []byte("an orphan layer")
	if resp, body := s.do(t, "POST", "/v2/team/orphan/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	code, stdout, stderr := runCLI(t, env, "gc", "--dry-run", "--grace", "0s", "-o", "json")
	var dry api.GCReport
	if err := json.Unmarshal([]byte(stdout), &dry); code != 0 || err != nil || !dry.DryRun || len(dry.Blobs) != 1 || dry.Blobs[0].ID != sha256Digest(blob) {
		t.Fatalf("gc --dry-run: exit %d, %v %+v", code, err, dry)
	}
	if !strings.Contains(stderr, "gc: blobs 1/1 examined, 1 to remove") {
		t.Errorf("gc --dry-run did not stream the server's progress: %q", stderr)
	}
	var rep api.GCReport
	if err := json.Unmarshal([]byte(run("gc", "--grace", "0s")), &rep); err != nil || rep.DryRun || len(rep.Blobs) != 1 {
		t.Fatalf("gc: %v %+v", err, rep)
	}
	if resp, _ := s.do(t, "GET", "/v2/team/orphan/blobs/"+sha256Digest(blob), nil, nil); resp.StatusCode != 404 {
		t.Errorf("the collected blob is still served: %d", resp.StatusCode)
	}

	// The audit log is written behind the requests: wait for the events.
	auditEvents := func(action string, want int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var events []map[string]any
			if err := json.Unmarshal([]byte(run("audit", "--action", action)), &events); err != nil {
				t.Fatal(err)
			}
			if len(events) >= want || time.Now().After(deadline) {
				if len(events) != want {
					t.Fatalf("audit --action %s: %d events, want %d: %+v", action, len(events), want, events)
				}
				return events
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if ev := auditEvents("keys.rotate", 1)[0]; ev["result"] != "allowed" || ev["actor"] != "admin" {
		t.Errorf("the rotation's audit event: %+v", ev)
	}
	auditEvents("gc.run", 2)
	var v api.AuditVerification
	if err := json.Unmarshal([]byte(run("audit", "verify")), &v); err != nil || !v.Verified || v.Events == 0 {
		t.Fatalf("audit verify: %v %+v", err, v)
	}
	if _, err := os.Stat("berth-data"); !os.IsNotExist(err) {
		t.Errorf("an admin command run through the server created ./berth-data (stat: %v)", err)
	}

	// Someone who is not an owner of the registry is refused, with its reason.
	code, stdout, stderr = runCLI(t, env, "principal", "create", "ci-dev", "-o", "json")
	if code != 0 {
		t.Fatalf("principal create: %s%s", stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, env, "secret", "add", "ci-dev", "-o", "json")
	var sec struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &sec) != nil {
		t.Fatalf("secret add: %s%s", stdout, stderr)
	}
	dev := map[string]string{envURL: s.url, envClientID: "ci-dev", envClientSecret: sec.Value, "HOME": env["HOME"]}
	for _, args := range [][]string{{"keys", "rotate"}, {"keys", "list"}, {"gc", "--dry-run"}, {"audit"}, {"audit", "verify"}} {
		code, stdout, _ := runCLI(t, dev, append(args, "-o", "json")...)
		if got := jsonErrorCode(t, stdout); code != 1 || got != "role_missing" {
			t.Errorf("berth %s as a principal without owner: exit %d, code %q; want 1, role_missing", strings.Join(args, " "), code, got)
		}
	}
}

// TestAdminCommandsNeverCreateDataFolder runs every admin command that works
// on the stores directly against a folder that is not a data folder: each is
// refused with not_found, and creates nothing. Without --data or --db and
// without a server to reach, they ask for one rather than guess a folder.
func TestAdminCommandsNeverCreateDataFolder(t *testing.T) {
	t.Chdir(t.TempDir())
	home := t.TempDir()
	cmds := [][]string{{"keys", "list"}, {"keys", "rotate"}, {"gc"}, {"gc", "--dry-run"}, {"audit"}, {"audit", "verify"}}
	for _, args := range cmds {
		code, stdout, _ := runCLI(t, map[string]string{"HOME": home}, append(args, "--data", "not-a-server", "-o", "json")...)
		if got := jsonErrorCode(t, stdout); code != 1 || got != "not_found" {
			t.Errorf("berth %s --data not-a-server: exit %d, code %q; want 1, not_found", strings.Join(args, " "), code, got)
		}
		code, stdout, _ = runCLI(t, map[string]string{"HOME": home}, append(args, "-o", "json")...)
		if got := jsonErrorCode(t, stdout); code != 1 || got != "credentials_missing" {
			t.Errorf("berth %s with no server: exit %d, code %q; want 1, credentials_missing", strings.Join(args, " "), code, got)
		}
	}
	for _, dir := range []string{"not-a-server", "berth-data"} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("an admin command created %s (stat: %v)", dir, err)
		}
	}
}

// jwtHeaderKID returns the kid of a JWT's header, unverified.
func jwtHeaderKID(t *testing.T, token string) string {
	t.Helper()
	head, _, ok := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if !ok || err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("%q is not a JWT", token)
	}
	return h.Kid
}
