package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestSecretCommands(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci")

	code, stdout, stderr := runCLI(t, env, "secret", "add", "ci", "--expires-in", "30d", "--description", "deploy", "-o", "json")
	if code != 0 {
		t.Fatalf("add: exit %d, stderr %q", code, stderr)
	}
	added := decodeJSON[map[string]any](t, stdout)
	keys(t, "secret add -o json", added, "id", "hint", "value", "expires_at")
	value, _ := added["value"].(string)
	if berth.CheckSecretFormat(value) != nil || added["expires_at"] != "2026-04-13T15:09:26Z" {
		t.Errorf("added %v", added)
	}

	// Text: the value alone on stdout, the warning on stderr.
	code, stdout, stderr = runCLI(t, env, "secret", "add", "ci")
	text := strings.TrimSpace(stdout)
	if code != 0 || berth.CheckSecretFormat(text) != nil {
		t.Errorf("add text: exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "will not be shown again") || !strings.Contains(stderr, "in 90d") {
		t.Errorf("add text: stderr %q", stderr)
	}

	code, stdout, _ = runCLI(t, env, "secret", "list", "ci", "-o", "json")
	list := decodeJSON[[]map[string]any](t, stdout)
	if code != 0 || len(list) != 3 {
		t.Fatalf("list: exit %d, %v", code, list)
	}
	keys(t, "secret list -o json", list[0], "id", "hint", "state", "expires_at", "created_at", "last_used_at")
	if strings.Contains(stdout, value) || strings.Contains(stdout, text) || strings.Contains(stdout, `"value"`) {
		t.Errorf("secret list shows a value: %s", stdout)
	}
	code, stdout, _ = runCLI(t, env, "secret", "list", "ci")
	if code != 0 || !strings.Contains(stdout, "active") || !strings.Contains(stdout, added["hint"].(string)) || strings.Contains(stdout, value) {
		t.Errorf("list text: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "secret", "remove", "ci", added["id"].(string), "-o", "json")
	if r := decodeJSON[map[string]any](t, stdout); code != 0 || r["state"] != "revoked" {
		t.Errorf("remove: exit %d, %v", code, r)
	}
	// The removed secret is refused as revoked.
	code, _, stderr = runCLI(t, s.Env("ci", value), "secret", "list", "ci")
	if code != 1 || !strings.Contains(stderr, "[secret_revoked]") {
		t.Errorf("a removed secret: exit %d, %q", code, stderr)
	}

	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"secret", "add", "ci", "--expires-in", "400d"}, "[invalid]"},
		{[]string{"secret", "add", "nobody"}, "[not_found]"},
		{[]string{"secret", "remove", "ci", "not-an-id"}, "[invalid]"},
		{[]string{"secret", "remove", "ci", "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70"}, "[not_found]"},
		{[]string{"secret", "remove", "ci"}, "[invalid]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.code) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.code)
		}
	}
	code, _, stderr = runCLI(t, env, "secret", "add", "ci", "--expires-in", "400d")
	if !strings.Contains(stderr, "requested 400d; the maximum is 365d") {
		t.Errorf("400d: %q", stderr)
	}
	s.NoSecretsLogged(t, s.AdminSecret, value, text)
}
