package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

// decodeJSON decodes a command's -o json output, which must be one document.
func decodeJSON[T any](t *testing.T, stdout string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("-o json printed %q: %v", stdout, err)
	}
	if dec.More() {
		t.Fatalf("-o json printed more than one document: %q", stdout)
	}
	return v
}

// keys asserts that a JSON object has the given fields.
func keys(t *testing.T, what string, m map[string]any, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := m[n]; !ok {
			t.Errorf("%s has no field %q: %v", what, n, m)
		}
	}
}

func TestClientConfigMissing(t *testing.T) {
	s := apitest.New(t)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		missing string
	}{
		{"nothing", nil, "BERTH_URL, BERTH_CLIENT_ID and BERTH_CLIENT_SECRET"},
		{"no secret", map[string]string{"BERTH_URL": s.URL, "BERTH_CLIENT_ID": "admin"}, "BERTH_CLIENT_SECRET is"},
		{"no url", map[string]string{"BERTH_CLIENT_ID": "admin", "BERTH_CLIENT_SECRET": s.AdminSecret}, "BERTH_URL is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.env, "principal", "list")
			if code != 1 || !strings.Contains(stderr, "[credentials_missing]") || !strings.Contains(stderr, tc.missing) {
				t.Errorf("exit %d, stderr %q; want 1, credentials_missing naming %s", code, stderr, tc.missing)
			}
			if !strings.Contains(stderr, "Try: export BERTH_URL=") {
				t.Errorf("stderr %q has no hint naming the variables", stderr)
			}
			code, stdout, _ := runCLI(t, tc.env, "principal", "list", "-o", "json")
			e := decodeJSON[map[string]map[string]any](t, stdout)["error"]
			if code != 1 || e["code"] != "credentials_missing" || !strings.Contains(e["hint"].(string), "BERTH_CLIENT_SECRET") {
				t.Errorf("-o json: exit %d, %v", code, e)
			}
		})
	}
}

func TestClientConfigURL(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	env["BERTH_URL"] = "127.0.0.1:5000"
	if code, _, stderr := runCLI(t, env, "principal", "list"); code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Errorf("a URL without a scheme: exit %d, stderr %q", code, stderr)
	}
	// A wrong secret is the server's refusal, shown with its code and hint.
	env = s.Env(s.Admin.ClientID, "brt_wrong")
	code, _, stderr := runCLI(t, env, "principal", "list")
	if code != 1 || !strings.Contains(stderr, "[secret_invalid]") || !strings.Contains(stderr, "Try: ") {
		t.Errorf("a wrong secret: exit %d, stderr %q", code, stderr)
	}
	// A loopback http URL draws no warning.
	if _, _, stderr := runCLI(t, s.AdminEnv(), "principal", "list"); strings.Contains(stderr, "warning") {
		t.Errorf("warning for a loopback URL: %q", stderr)
	}
}

// TestRefusalLinksExplanation: a refusal from a server whose url is set
// shows the link to its code's explanation on its own line (and as
// "explain" with -o json); from a server without url, no link.
func TestRefusalLinksExplanation(t *testing.T) {
	linked := apitest.NewWith(t, apitest.Options{URL: "https://reg.example"})
	_, secret := linked.AddPrincipal(t, "ci")
	env := linked.Env("ci", secret)
	code, _, stderr := runCLI(t, env, "audit")
	if code != 1 || !strings.Contains(stderr, "[role_missing]") || !strings.Contains(stderr, "\n  see https://reg.example/errors/role_missing\n") {
		t.Errorf("a refusal with url set: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runCLI(t, env, "audit", "-o", "json")
	if code != 1 || !strings.Contains(stdout, `"explain":"https://reg.example/errors/role_missing"`) {
		t.Errorf("-o json: exit %d, stdout %q", code, stdout)
	}

	bare := apitest.New(t)
	_, secret = bare.AddPrincipal(t, "ci")
	code, _, stderr = runCLI(t, bare.Env("ci", secret), "audit")
	if code != 1 || !strings.Contains(stderr, "[role_missing]") || strings.Contains(stderr, "see ") || strings.Contains(stderr, "/errors/") {
		t.Errorf("a refusal without url: exit %d, stderr %q", code, stderr)
	}
}

// TestLoginRefusalLinksExplanation: berth login refused by the token
// endpoint, or by the device authorization endpoint, of a server whose url
// is set prints the link to the reason's explanation under the hint, as for
// API refusals.
func TestLoginRefusalLinksExplanation(t *testing.T) {
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := startServe(t, t.TempDir(), "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--config", writeConfig(t, "url: "+base+"\n"))
	id, _ := s.admin(t)
	env := map[string]string{"HOME": t.TempDir(), "DOCKER_CONFIG": t.TempDir(), "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": "brt_wrong"}
	code, _, stderr := runCLI(t, env, "login", s.url)
	if code != 1 || !strings.Contains(stderr, "[secret_invalid]") || !strings.Contains(stderr, "\n  see "+base+"/errors/secret_invalid\n") {
		t.Errorf("a refused login with url set: exit %d, stderr %q", code, stderr)
	}
	// No credential: the device login, refused since no identity provider
	// was added.
	delete(env, "BERTH_CLIENT_ID")
	delete(env, "BERTH_CLIENT_SECRET")
	code, _, stderr = runCLI(t, env, "login", s.url)
	if code != 1 || !strings.Contains(stderr, "[idp_unknown]") || !strings.Contains(stderr, "\n  see "+base+"/errors/idp_unknown\n") {
		t.Errorf("a refused device login with url set: exit %d, stderr %q", code, stderr)
	}
}
