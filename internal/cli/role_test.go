package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestRoleCommands(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci")

	code, stdout, stderr := runCLI(t, env, "role", "assign", "--principal", "ci", "--role", "push", "--scope", "team/*", "-o", "json")
	if code != 0 {
		t.Fatalf("assign: exit %d, stderr %q", code, stderr)
	}
	a := decodeJSON[map[string]any](t, stdout)
	keys(t, "role assign -o json", a, "principal", "role", "scope", "created_at")
	if a["principal"] != "ci" || a["role"] != "push" || a["scope"] != "team/*" {
		t.Errorf("assigned %v", a)
	}
	code, stdout, _ = runCLI(t, env, "role", "assign", "--principal", "anonymous", "--role", "pull", "--scope", "public/*")
	if code != 0 || stdout != "Assigned role pull on public/* to anonymous\n" {
		t.Errorf("assign text: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "role", "list", "-o", "json")
	if l := decodeJSON[[]map[string]any](t, stdout); code != 0 || len(l) != 3 {
		t.Errorf("list: exit %d, %v", code, l)
	}
	code, stdout, _ = runCLI(t, env, "role", "list", "--principal", "ci")
	if code != 0 || !strings.Contains(stdout, "team/*") || strings.Contains(stdout, "registry") {
		t.Errorf("list --principal ci: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "role", "revoke", "--principal", "ci", "--role", "push", "--scope", "team/*")
	if code != 0 || stdout != "Revoked role push on team/* from ci\n" {
		t.Errorf("revoke: exit %d, %q", code, stdout)
	}

	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"role", "assign", "--principal", "ci", "--role", "push"}, "[invalid]"},
		{[]string{"role", "assign", "--principal", "ci", "--role", "writer", "--scope", "team/*"}, "[invalid]"},
		{[]string{"role", "assign", "--principal", "anonymous", "--role", "push", "--scope", "team/*"}, "[invalid]"},
		{[]string{"role", "assign", "--principal", "nobody", "--role", "pull", "--scope", "team/*"}, "[not_found]"},
		{[]string{"role", "revoke", "--principal", "ci", "--role", "push", "--scope", "team/*"}, "[not_found]"},
		{[]string{"role", "revoke", "--principal", "admin", "--role", "owner", "--scope", "registry"}, "[conflict]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.code) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.code)
		}
	}
}

func TestAccessCheckCommand(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci", apitest.Role{Role: "pull", Scope: "team/*"})

	// Allowed and denied both exit 0: the check ran.
	code, stdout, stderr := runCLI(t, env, "access", "check", "--principal", "ci", "--action", "pull", "--repository", "team/web", "-o", "json")
	d := decodeJSON[map[string]any](t, stdout)
	keys(t, "access check -o json", d, "allowed", "principal", "action", "repository")
	if code != 0 || d["allowed"] != true {
		t.Errorf("allowed: exit %d, %v, stderr %q", code, d, stderr)
	}
	code, stdout, _ = runCLI(t, env, "access", "check", "--principal", "ci", "--action", "push", "--repository", "team/web", "-o", "json")
	d = decodeJSON[map[string]any](t, stdout)
	keys(t, "a denial -o json", d, "allowed", "reason", "hint")
	if code != 0 || d["allowed"] != false || d["reason"] != "role_missing" ||
		d["hint"] != "berth role assign --principal ci --role push --scope team/web" {
		t.Errorf("denied: exit %d, %v", code, d)
	}

	code, stdout, _ = runCLI(t, env, "access", "check", "--principal", "ci", "--action", "pull", "--repository", "team/web")
	if code != 0 || stdout != "allowed: ci may pull on repository team/web, by role pull on team/*\n" {
		t.Errorf("allowed text: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "access", "check", "--principal", "ci", "--action", "delete", "--repository", "team/web")
	if code != 0 || !strings.HasPrefix(stdout, "denied [role_missing]: ") ||
		!strings.Contains(stdout, "Try: berth role assign --principal ci --role delete --scope team/web") {
		t.Errorf("denied text: exit %d, %q", code, stdout)
	}

	// A check that could not run exits 1.
	code, _, stderr = runCLI(t, env, "access", "check", "--principal", "ci", "--repository", "team/web")
	if code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Errorf("no action: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, env, "access", "check", "--principal", "nobody", "--action", "pull", "--repository", "team/web")
	if code != 1 || !strings.Contains(stderr, "[not_found]") {
		t.Errorf("unknown principal: exit %d, %q", code, stderr)
	}
}
