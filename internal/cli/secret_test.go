package cli

import (
	"context"
	"crypto/rand"
	"fmt"
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

// TestSecretListExpiring: --expiring-within lists every principal's active
// secrets that expire within the window, soonest first, with the
// connections that depend on each; PRINCIPAL narrows it to one.
func TestSecretListExpiring(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	web, _ := s.AddPrincipal(t, "ci-web")
	s.AddPrincipal(t, "ci-api")
	add := func(principal, expiresIn string) map[string]any {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, "secret", "add", principal, "--expires-in", expiresIn, "-o", "json")
		if code != 0 {
			t.Fatalf("add: exit %d, %s", code, stderr)
		}
		return decodeJSON[map[string]any](t, stdout)
	}
	web10, api3 := add("ci-web", "10d"), add("ci-api", "3d")
	add("ci-web", "40d")
	conn, err := berth.NewConnection(rand.Reader, "web-deploy", web.ID, berth.ConnectionSecret, nil, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateConnection(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	id := web10["id"].(string)
	if _, err := s.Store.UpdateConnection(context.Background(), conn.ID, berth.ConnectionUpdate{SecretID: &id}); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, env, "secret", "list", "--expiring-within", "30d", "-o", "json")
	if code != 0 {
		t.Fatalf("list --expiring-within: exit %d, %s", code, stderr)
	}
	list := decodeJSON[[]map[string]any](t, stdout)
	if len(list) != 2 || list[0]["id"] != api3["id"] || list[1]["id"] != web10["id"] {
		t.Fatalf("listed %v, want ci-api's 3d secret then ci-web's 10d one", list)
	}
	keys(t, "secret list --expiring-within -o json", list[1], "principal", "id", "hint", "expires_at", "days_left", "connections")
	if list[1]["principal"] != "ci-web" || list[1]["days_left"] != 10.0 || fmt.Sprint(list[1]["connections"]) != "[web-deploy]" || list[1]["expires_at"] != web10["expires_at"] {
		t.Errorf("ci-web's secret: %v", list[1])
	}
	if c, ok := list[0]["connections"].([]any); !ok || len(c) != 0 {
		t.Errorf("a secret no connection uses: connections %v, want []", list[0]["connections"])
	}

	code, stdout, _ = runCLI(t, env, "secret", "list", "--expiring-within", "30d")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "ci-api") || !strings.Contains(lines[2], "web-deploy") {
		t.Errorf("text: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "secret", "list", "ci-web", "--expiring-within", "60d", "-o", "json")
	if l := decodeJSON[[]map[string]any](t, stdout); code != 0 || len(l) != 2 || l[0]["id"] != web10["id"] {
		t.Errorf("ci-web within 60d: exit %d, %v", code, l)
	}
	code, _, stderr = runCLI(t, env, "secret", "list", "--expiring-within", "1h")
	if code != 0 || !strings.Contains(stderr, "No active secret expires within 1h") {
		t.Errorf("nothing within 1h: exit %d, %q", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"secret", "list"}, "[invalid]"},
		{[]string{"secret", "list", "--expiring-within", "soon"}, "[invalid]"},
		{[]string{"secret", "list", "a", "b", "--expiring-within", "30d"}, "[invalid]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.code) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.code)
		}
	}
}
