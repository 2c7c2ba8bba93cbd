package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestPrincipalCommands(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()

	code, stdout, stderr := runCLI(t, env, "principal", "create", "ci-web", "-o", "json")
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	p := decodeJSON[map[string]any](t, stdout)
	keys(t, "principal create -o json", p, "name", "client_id", "id", "kind", "disabled", "created_at")
	if p["name"] != "ci-web" {
		t.Errorf("created %v", p)
	}
	clientID := p["client_id"].(string)

	code, stdout, _ = runCLI(t, env, "principal", "create", "ci-api")
	if code != 0 || !strings.Contains(stdout, "ci-api") || !strings.Contains(stdout, "client id: ") {
		t.Errorf("create text: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "principal", "list", "-o", "json")
	list := decodeJSON[[]map[string]any](t, stdout)
	if code != 0 || len(list) != 3 || list[0]["name"] != "admin" || list[1]["name"] != "ci-api" || list[2]["client_id"] != clientID {
		t.Errorf("list -o json: exit %d, %v", code, list)
	}
	code, stdout, _ = runCLI(t, env, "principal", "list")
	if code != 0 || !strings.HasPrefix(stdout, "NAME") || !strings.Contains(stdout, clientID) {
		t.Errorf("list: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "principal", "show", "admin", "-o", "json")
	show := decodeJSON[map[string]any](t, stdout)
	keys(t, "principal show -o json", show, "name", "client_id", "roles")
	if code != 0 || show["client_id"] != s.Admin.ClientID {
		t.Errorf("show -o json: exit %d, %v", code, show)
	}
	code, stdout, _ = runCLI(t, env, "principal", "show", "admin")
	if code != 0 || !strings.Contains(stdout, s.Admin.ClientID) || !strings.Contains(stdout, "owner on registry") {
		t.Errorf("show: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "principal", "disable", "ci-web", "-o", "json")
	if d := decodeJSON[map[string]any](t, stdout); code != 0 || d["disabled"] != true {
		t.Errorf("disable: exit %d, %v", code, d)
	}
	code, stdout, _ = runCLI(t, env, "principal", "enable", "ci-web")
	if code != 0 || !strings.Contains(stdout, "Enabled principal ci-web") {
		t.Errorf("enable: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "principal", "delete", "ci-web", "-o", "json")
	if d := decodeJSON[map[string]any](t, stdout); code != 0 || d["name"] != "ci-web" {
		t.Errorf("delete: exit %d, %v", code, d)
	}

	// Refusals exit 1 with the server's code and hint.
	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"principal", "show", "ci-web"}, "[not_found]"},
		{[]string{"principal", "create", "ci-api"}, "[conflict]"},
		{[]string{"principal", "create", "Bad Name"}, "[invalid]"},
		{[]string{"principal", "delete", "admin"}, "[invalid]"},
		{[]string{"principal", "create"}, "[invalid]"},
		{[]string{"principal", "show", "a", "b"}, "[invalid]"},
	} {
		code, stdout, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.code) || !strings.Contains(stderr, "Try: ") || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and %s with a hint", tc.args, code, stdout, stderr, tc.code)
		}
	}
	code, stdout, _ = runCLI(t, env, "principal", "show", "nobody", "-o", "json")
	if e := decodeJSON[map[string]map[string]any](t, stdout)["error"]; code != 1 || e["code"] != "not_found" || e["hint"] == nil {
		t.Errorf("show nobody -o json: exit %d, %v", code, e)
	}

	// A principal without owner on registry is refused with the command that
	// would grant it.
	_, secret := s.AddPrincipal(t, "puller", apitest.Role{Role: "pull", Scope: "registry"})
	code, _, stderr = runCLI(t, s.Env("puller", secret), "principal", "list")
	if code != 1 || !strings.Contains(stderr, "[role_missing]") ||
		!strings.Contains(stderr, "Try: berth role assign --principal puller --role owner --scope registry") {
		t.Errorf("list as puller: exit %d, stderr %q", code, stderr)
	}
	s.NoSecretsLogged(t, s.AdminSecret, secret)
}
