package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestPipelineCommands(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()

	code, stdout, stderr := runCLI(t, env, "pipeline", "create", "web-main", "--github", "org/web@main", "-o", "json")
	if code != 0 {
		t.Fatalf("create --github: exit %d, %s", code, stderr)
	}
	p := decodeJSON[map[string]any](t, stdout)
	keys(t, "pipeline create -o json", p, "id", "name", "issuer", "subject", "preset", "created_at")
	if p["subject"] != "repo:org/web:ref:refs/heads/main" || p["issuer"] != "https://token.actions.githubusercontent.com" {
		t.Errorf("github preset: %v", p)
	}

	code, stdout, stderr = runCLI(t, env, "pipeline", "create", "deploy", "--issuer", "https://token.actions.githubusercontent.com",
		"--subject", "repo:org/web:*", "--audience", "berth", "--claim", "workflow=deploy*", "--claim", "ref_protected=true")
	if code != 0 || !strings.Contains(stdout, "Registered pipeline deploy") || !strings.Contains(stdout, "claim:     workflow=deploy*") ||
		!strings.Contains(stderr, "berth connection authorize CONNECTION --pipeline deploy") {
		t.Errorf("create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, _ = runCLI(t, env, "pipeline", "create", "api", "--gitlab", "group/api@main", "--gitlab-url", "https://gitlab.example.com", "-o", "json")
	if p := decodeJSON[map[string]any](t, stdout); code != 0 || p["issuer"] != "https://gitlab.example.com" {
		t.Errorf("gitlab: exit %d, %v", code, p)
	}

	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, env, "pipeline", "create", "builder", "--kubernetes", "ci/builder", "--issuer", "https://kubernetes.default.svc",
		"--jwks-file", jwks, "-o", "json")
	if p := decodeJSON[map[string]any](t, stdout); code != 0 || p["subject"] != "system:serviceaccount:ci:builder" || p["jwks"] == nil {
		t.Errorf("kubernetes with --jwks-file: exit %d, %v, %s", code, p, stderr)
	}
	code, stdout, stderr = runCLI(t, env, "pipeline", "create", "ci-all", "--kubernetes-namespace", "ci", "--issuer", "https://kubernetes.default.svc")
	if code != 0 || !strings.Contains(stdout, "subject:   system:serviceaccount:ci:*") || !strings.Contains(stdout, "claim:     kubernetes.io.namespace=ci") {
		t.Errorf("--kubernetes-namespace: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "create", "ado", "--azure-devops", "contoso/web/berth", "--issuer", "https://vstoken.dev.azure.com/1234", "-o", "json")
	if p := decodeJSON[map[string]any](t, stdout); code != 0 || p["subject"] != "sc://contoso/web/berth" {
		t.Errorf("azure: exit %d, %v", code, p)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "create", "x"}, "[invalid]"},
		{[]string{"pipeline", "create", "x", "--github", "o/r", "--gitlab", "g/p"}, "[invalid]"},
		{[]string{"pipeline", "create", "x", "--issuer", "https://a.example", "--subject", "s", "--claim", "novalue"}, "[invalid]"},
		{[]string{"pipeline", "create", "x", "--issuer", "http://ci.example.com", "--subject", "s"}, "[invalid]"},
		{[]string{"pipeline", "create", "x", "--azure-devops", "o/p/c"}, "--issuer"},
		{[]string{"pipeline", "create", "x", "--kubernetes-namespace", "ci"}, "--issuer"},
		{[]string{"pipeline", "create", "x", "--kubernetes-namespace", "ci", "--kubernetes", "ci/b", "--issuer", "https://k.example"}, "more than one preset"},
		{[]string{"pipeline", "create", "x", "--github", "o/r", "--jwks-file", "/nonexistent/jwks.json"}, "[invalid]"},
		{[]string{"pipeline", "create", "deploy", "--github", "o/r"}, "[conflict]"},
		{[]string{"pipeline", "show", "nope"}, "[not_found]"},
		{[]string{"pipeline", "delete", "nope"}, "[not_found]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.want)
		}
	}

	code, stdout, _ = runCLI(t, env, "pipeline", "list", "-o", "json")
	list := decodeJSON[[]map[string]any](t, stdout)
	if code != 0 || len(list) != 6 || list[0]["name"] != "ado" {
		t.Errorf("list: exit %d, %v", code, list)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "list")
	if code != 0 || !strings.Contains(stdout, "web-main") || !strings.Contains(stdout, "ISSUER") {
		t.Errorf("list text: %q", stdout)
	}

	runCLI(t, env, "principal", "create", "ci")
	runCLI(t, env, "connection", "create", "web", "--principal", "ci")
	runCLI(t, env, "connection", "authorize", "web", "--pipeline", "web-main")
	code, stdout, _ = runCLI(t, env, "pipeline", "show", "web-main", "-o", "json")
	show := decodeJSON[map[string]any](t, stdout)
	if cs, _ := show["connections"].([]any); code != 0 || len(cs) != 1 || cs[0] != "web" {
		t.Errorf("show: %v", show)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "show", "web-main")
	if code != 0 || !strings.Contains(stdout, "permitted: web") {
		t.Errorf("show text: %q", stdout)
	}
	// New keys for an issuer's rotation: the pipelines keep their
	// permissions; --published-keys unpins them.
	runCLI(t, env, "connection", "authorize", "web", "--pipeline", "builder")
	rotated := filepath.Join(t.TempDir(), "rotated.json")
	if err := os.WriteFile(rotated, []byte(`{"keys":[{"kty":"oct","k":"bmV3LWtleQ","kid":"y"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, env, "pipeline", "update", "builder", "ci-all", "--jwks-file", rotated)
	if code != 0 || !strings.Contains(stdout, "Pipeline builder verifies with the key set of "+rotated) || !strings.Contains(stdout, "Pipeline ci-all") {
		t.Errorf("update --jwks-file: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "show", "builder", "-o", "json")
	show = decodeJSON[map[string]any](t, stdout)
	if cs, _ := show["connections"].([]any); code != 0 || len(cs) != 1 || cs[0] != "web" || !strings.Contains(stdout, `"kid": "y"`) {
		t.Errorf("show after update: %s", stdout)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "update", "builder", "--published-keys", "-o", "json")
	if ps := decodeJSON[[]map[string]any](t, stdout); code != 0 || len(ps) != 1 || ps[0]["jwks"] != nil {
		t.Errorf("update --published-keys: exit %d, %s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "update", "builder"}, "[invalid]"},
		{[]string{"pipeline", "update", "builder", "--jwks-file", rotated, "--published-keys"}, "[invalid]"},
		{[]string{"pipeline", "update", "nope", "--jwks-file", rotated}, "[not_found]"},
		{[]string{"pipeline", "update", "builder", "--jwks-file", filepath.Join(t.TempDir(), "none.json")}, "[invalid]"},
	} {
		if code, _, stderr := runCLI(t, env, tc.args...); code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.want)
		}
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "delete", "web-main")
	if code != 0 || !strings.Contains(stdout, "Deleted pipeline web-main; it is no longer permitted on web") {
		t.Errorf("delete: exit %d, %q", code, stdout)
	}
}
