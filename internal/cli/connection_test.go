package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestConnectionCommands(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	runCLI(t, env, "pipeline", "create", "web-main", "--github", "org/web@main")
	runCLI(t, env, "pipeline", "create", "web-pr", "--github", "org/web")

	code, stdout, stderr := runCLI(t, env, "connection", "create", "web", "--principal", "ci",
		"--repository", "team/web", "--actions", "pull,push", "--repository", "team/base", "--actions", "pull", "-o", "json")
	if code != 0 {
		t.Fatalf("create: exit %d, %s", code, stderr)
	}
	c := decodeJSON[map[string]any](t, stdout)
	keys(t, "connection create -o json", c, "id", "name", "principal", "auth", "intents", "all_pipelines", "pipelines", "disabled", "created_at")
	if c["auth"] != "federated" || c["principal"] != "ci" || len(c["intents"].([]any)) != 2 {
		t.Errorf("created %v", c)
	}

	// A secret connection: the value alone on stdout.
	code, stdout, stderr = runCLI(t, env, "connection", "create", "legacy", "--principal", "ci", "--auth", "secret")
	value := strings.TrimSpace(stdout)
	if code != 0 || berth.CheckSecretFormat(value) != nil || !strings.Contains(stderr, "will not be shown again") {
		t.Fatalf("create secret: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, env, "connection", "create", "legacy2", "--principal", "ci", "--auth", "secret", "-o", "json")
	ns, _ := decodeJSON[map[string]any](t, stdout)["new_secret"].(map[string]any)
	keys(t, "a secret connection's new_secret", ns, "id", "hint", "value", "expires_at")

	code, stdout, _ = runCLI(t, env, "connection", "authorize", "web", "--pipeline", "web-main")
	if code != 0 || !strings.Contains(stdout, "now permits: web-main") {
		t.Errorf("authorize: exit %d, %q", code, stdout)
	}
	code, _, stderr = runCLI(t, env, "connection", "authorize", "legacy", "--pipeline", "web-main")
	if code != 1 || !strings.Contains(stderr, "[invalid]") || !strings.Contains(stderr, "Try: berth connection convert legacy --to federated") {
		t.Errorf("authorize a secret connection: exit %d, %q", code, stderr)
	}

	// A refused pipeline's request, then permit.
	ctx := context.Background()
	conn, _ := s.Store.FindConnectionByName(ctx, "web")
	pr, _ := s.Store.FindPipelineByName(ctx, "web-pr")
	if err := s.Store.RecordPermissionRequest(ctx, berth.PermissionRequest{ConnectionID: conn.ID, PipelineID: pr.ID, Last: s.Clock.Now(), Run: "4242"}); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, env, "connection", "requests", "web")
	if code != 0 || !strings.Contains(stdout, "web-pr") || !strings.Contains(stdout, "4242") {
		t.Errorf("requests: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "connection", "requests", "web", "-o", "json")
	reqs := decodeJSON[map[string]any](t, stdout)
	if rs, _ := reqs["requests"].([]any); code != 0 || len(rs) != 1 {
		t.Errorf("requests -o json: %v", reqs)
	} else {
		keys(t, "a permission request", rs[0].(map[string]any), "pipeline", "first_at", "last_at", "count", "run")
	}
	code, stdout, _ = runCLI(t, env, "connection", "permit", "web", "--pipeline", "web-pr")
	if code != 0 || !strings.Contains(stdout, "web-pr may now use") {
		t.Errorf("permit: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "connection", "unauthorize", "web", "--pipeline", "web-pr", "-o", "json")
	if p := decodeJSON[map[string]any](t, stdout); code != 0 || len(p["pipelines"].([]any)) != 1 {
		t.Errorf("unauthorize: %v", p)
	}

	code, stdout, _ = runCLI(t, env, "connection", "show", "web")
	if code != 0 || !strings.Contains(stdout, "pipelines:  web-main") || !strings.Contains(stdout, "intent:     pull,push on team/web") {
		t.Errorf("show: %q", stdout)
	}
	code, stdout, _ = runCLI(t, env, "connection", "list", "-o", "json")
	if l := decodeJSON[[]map[string]any](t, stdout); code != 0 || len(l) != 3 {
		t.Errorf("list: %v", l)
	}
	code, stdout, _ = runCLI(t, env, "connection", "list")
	if code != 0 || !strings.Contains(stdout, "legacy") || !strings.Contains(stdout, "SECRET EXPIRES") {
		t.Errorf("list text: %q", stdout)
	}
	code, stdout, _ = runCLI(t, env, "connection", "disable", "web", "-o", "json")
	if d := decodeJSON[map[string]any](t, stdout); code != 0 || d["disabled"] != true {
		t.Errorf("disable: %v", d)
	}
	code, stdout, _ = runCLI(t, env, "connection", "enable", "web")
	if code != 0 || !strings.Contains(stdout, "Enabled") {
		t.Errorf("enable: %q", stdout)
	}

	// Renew: the new value alone on stdout; the old one works for the grace.
	code, stdout, stderr = runCLI(t, env, "connection", "save", "legacy", "--grace", "2d")
	fresh := strings.TrimSpace(stdout)
	if code != 0 || berth.CheckSecretFormat(fresh) != nil || fresh == value || !strings.Contains(stderr, "keeps working until 2026-03-16T15:09:26Z") {
		t.Errorf("save: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, s.Env("ci", value), "principal", "show", "ci"); code != 0 {
		t.Errorf("the old secret in its grace period: %s", stderr)
	}
	code, stdout, _ = runCLI(t, env, "connection", "save", "legacy", "-o", "json")
	saved := decodeJSON[map[string]any](t, stdout)
	keys(t, "connection save -o json", saved, "new_secret", "previous_secret")
	code, _, stderr = runCLI(t, env, "connection", "save", "web")
	if code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Errorf("save federated: exit %d, %q", code, stderr)
	}

	code, stdout, stderr = runCLI(t, env, "connection", "convert", "legacy2", "--to", "federated")
	if code != 0 || !strings.Contains(stdout, "now federated") || !strings.Contains(stderr, "keeps working until") {
		t.Errorf("convert: exit %d, %q, %q", code, stdout, stderr)
	}
	if code, _, _ := runCLI(t, env, "connection", "convert", "legacy2"); code != 1 {
		t.Errorf("convert without --to: exit %d", code)
	}

	// History: each use, with pipeline and CI run.
	if err := s.Store.AppendAuditEvents(ctx, []berth.AuditEvent{{Time: s.Clock.Now(), Actor: "ci", Action: berth.AuditRegistryPush,
		Target: "team/web", Result: berth.AuditAllowed, Connection: "web", Pipeline: "web-main", Detail: map[string]string{"ci_run": "9001"}}}); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, env, "connection", "history", "web", "--since", "24h")
	if code != 0 || !strings.Contains(stdout, "9001") || !strings.Contains(stdout, "registry.push") || !strings.Contains(stdout, "connection.authorize") {
		t.Errorf("history: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "connection", "history", "web", "--limit", "1", "-o", "json")
	h := decodeJSON[map[string]any](t, stdout)
	evs, _ := h["events"].([]any)
	if code != 0 || len(evs) != 1 {
		t.Fatalf("history -o json: %v", h)
	}
	keys(t, "a history event", evs[0].(map[string]any), "time", "pipeline", "ci_run", "action", "target", "result", "reason")

	code, stdout, _ = runCLI(t, env, "connection", "delete", "legacy")
	if code != 0 || !strings.Contains(stdout, "its secret is revoked") {
		t.Errorf("delete: %q", stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connection", "create", "x"}, "--principal is required"},
		{[]string{"connection", "create", "x", "--principal", "ci", "--repository", "team/x"}, "go in pairs"},
		{[]string{"connection", "create", "x", "--principal", "ci", "--repository", "team/x", "--actions", "write"}, "[invalid]"},
		{[]string{"connection", "authorize", "web"}, "exactly one of"},
		{[]string{"connection", "authorize", "web", "--pipeline", "p", "--all-pipelines"}, "exactly one of"},
		{[]string{"connection", "permit", "web"}, "--pipeline is required"},
		{[]string{"connection", "show", "nope"}, "[not_found]"},
		{[]string{"connection", "history", "web", "--since", "yesterday"}, "[invalid]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.want)
		}
	}
	s.NoSecretsLogged(t, value, fresh, s.AdminSecret)
}

// TestConnectionVerifyCommand checks verify's lines and exit status.
func TestConnectionVerifyCommand(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci", apitest.Role{Role: "pull", Scope: "team/*"})
	runCLI(t, env, "connection", "create", "legacy", "--principal", "ci", "--auth", "secret", "--repository", "team/base", "--actions", "pull")
	runCLI(t, env, "connection", "create", "web", "--principal", "ci", "--auth", "secret", "--repository", "team/web", "--actions", "push")

	code, stdout, stderr := runCLI(t, env, "connection", "verify", "legacy")
	if code != 0 || !strings.Contains(stdout, "✓ principal") || !strings.Contains(stdout, "✓ secret") || stderr != "" {
		t.Errorf("healthy: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, env, "connection", "verify", "web")
	if code != 1 || !strings.Contains(stdout, "✗ access team/web") ||
		!strings.Contains(stdout, "fix: berth role assign --principal ci --role push --scope team/web") ||
		!strings.Contains(stderr, "1 of 4 checks failed") {
		t.Errorf("missing role: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, env, "connection", "verify", "web", "-o", "json")
	v := decodeJSON[map[string]any](t, stdout)
	checks, _ := v["checks"].([]any)
	if code != 1 || v["ok"] != false || len(checks) != 4 {
		t.Fatalf("verify -o json: exit %d, %v", code, v)
	}
	keys(t, "a check", checks[0].(map[string]any), "name", "status", "message")

	// A secret under 30 days warns and still passes; an expired one fails.
	s.Clock.Advance(80 * 24 * time.Hour)
	code, stdout, _ = runCLI(t, env, "connection", "verify", "legacy")
	if code != 0 || !strings.Contains(stdout, "⚠ secret") || !strings.Contains(stdout, "fix: berth connection save legacy") {
		t.Errorf("expiring: exit %d, %q", code, stdout)
	}
	s.Clock.Advance(11 * 24 * time.Hour)
	code, stdout, _ = runCLI(t, env, "connection", "verify", "legacy")
	if code != 1 || !strings.Contains(stdout, "✗ secret") || !strings.Contains(stdout, "expired") {
		t.Errorf("expired: exit %d, %q", code, stdout)
	}
	code, _, stderr = runCLI(t, env, "connection", "verify", "nope")
	if code != 1 || !strings.Contains(stderr, "[not_found]") {
		t.Errorf("unknown connection: exit %d, %q", code, stderr)
	}
}
