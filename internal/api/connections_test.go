package api_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/oidctest"
)

// addPipeline registers a pipeline through the API.
func addPipeline(t *testing.T, s *apitest.Server, req api.CreatePipelineRequest) berth.Pipeline {
	t.Helper()
	if req.Issuer == "" && req.Preset == "" {
		req.Issuer = "https://token.actions.githubusercontent.com"
	}
	if req.Subject == "" && req.Preset == "" {
		req.Subject = "repo:org/" + req.Name + ":*"
	}
	var p berth.Pipeline
	call(t, s, adminCreds(s), "POST", "/api/v1/pipelines", req).ok(t, http.StatusCreated, &p)
	return p
}

func TestConnectionLifecycle(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)
	ctx := context.Background()
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	gh := addPipeline(t, s, api.CreatePipelineRequest{Name: "gh"})
	addPipeline(t, s, api.CreatePipelineRequest{Name: "gl"})

	// Federated, with what it is meant for.
	r := call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci",
		Intents: []api.IntentRequest{{Repository: "team/web", Actions: []string{"push", "pull"}}, {Repository: "team/*", Actions: []string{"pull", " pull"}}}})
	var web api.ConnectionChange
	r.ok(t, http.StatusCreated, &web)
	hasFields(t, "a new connection", fields(t, r.body), "id", "name", "principal", "principal_id", "auth", "intents", "all_pipelines", "pipelines", "disabled", "created_at")
	if web.Name != "web" || web.Principal != "ci" || web.Auth != berth.ConnectionFederated || web.NewSecret != nil || web.Secret != nil ||
		len(web.Pipelines) != 0 || web.Pipelines == nil {
		t.Errorf("created %s", r.body)
	}
	if len(web.Intents) != 2 || !slices.Equal(web.Intents[0].Actions, []string{"push", "pull"}) || !slices.Equal(web.Intents[1].Actions, []string{"pull"}) {
		t.Errorf("intents %+v", web.Intents)
	}

	// Secret: a secret of the principal, shown once, in a new secret's shape.
	r = call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "legacy", Principal: "ci", Auth: "secret"})
	var legacy api.ConnectionChange
	r.ok(t, http.StatusCreated, &legacy)
	ns := fields(t, r.body)["new_secret"].(map[string]any)
	hasFields(t, "a connection's new secret", ns, "id", "hint", "value", "expires_at")
	if legacy.NewSecret == nil || berth.CheckSecretFormat(legacy.NewSecret.Value) != nil ||
		!legacy.NewSecret.Expires.Equal(apitest.Epoch.Add(berth.DefaultSecretLifetime)) {
		t.Fatalf("secret connection: %s", r.body)
	}
	if legacy.Secret == nil || legacy.Secret.ID != legacy.NewSecret.ID || legacy.Secret.State != berth.SecretActive {
		t.Errorf("current secret %+v", legacy.Secret)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	value := legacy.NewSecret.Value
	call(t, s, creds{"ci", value}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)

	for _, tc := range []struct {
		what string
		req  any
		code berth.Code
	}{
		{"a taken name", api.CreateConnectionRequest{Name: "web", Principal: "ci"}, berth.CodeConflict},
		{"an unknown principal", api.CreateConnectionRequest{Name: "x", Principal: "nobody"}, berth.CodeNotFound},
		{"no principal", api.CreateConnectionRequest{Name: "x"}, berth.CodeInvalid},
		{"the anonymous principal", api.CreateConnectionRequest{Name: "x", Principal: "anonymous"}, berth.CodeInvalid},
		{"an unknown scheme", api.CreateConnectionRequest{Name: "x", Principal: "ci", Auth: "password"}, berth.CodeInvalid},
		{"an unknown action", api.CreateConnectionRequest{Name: "x", Principal: "ci", Intents: []api.IntentRequest{{Repository: "team/x", Actions: []string{"content:write"}}}}, berth.CodeInvalid},
		{"no action", api.CreateConnectionRequest{Name: "x", Principal: "ci", Intents: []api.IntentRequest{{Repository: "team/x"}}}, berth.CodeInvalid},
		{"the registry as a repository", api.CreateConnectionRequest{Name: "x", Principal: "ci", Intents: []api.IntentRequest{{Repository: "registry", Actions: []string{"pull"}}}}, berth.CodeInvalid},
		{"a secret lifetime on a federated connection", api.CreateConnectionRequest{Name: "x", Principal: "ci", ExpiresIn: "30d"}, berth.CodeInvalid},
		{"a lifetime over the maximum", api.CreateConnectionRequest{Name: "x", Principal: "ci", Auth: "secret", ExpiresIn: "400d"}, berth.CodeInvalid},
		{"a bad name", api.CreateConnectionRequest{Name: "-x", Principal: "ci"}, berth.CodeInvalid},
	} {
		call(t, s, admin, "POST", "/api/v1/connections", tc.req).fails(t, tc.code)
	}
	if ss, _ := s.Store.FindSecrets(ctx, web.PrincipalID); len(ss) != 2 {
		t.Errorf("refused creations left secrets behind: %d secrets, want 2", len(ss))
	}

	// Pipeline permissions.
	e := call(t, s, admin, "POST", "/api/v1/connections/legacy/authorize", api.PermissionChange{Pipeline: "gh"}).fails(t, berth.CodeInvalid)
	if hint(e) != "berth connection convert legacy --to federated" || !strings.Contains(e["message"].(string), "whoever holds the secret") {
		t.Errorf("authorize on a secret connection: %v", e)
	}
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "gh", AllPipelines: true}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "nope"}).fails(t, berth.CodeNotFound)
	call(t, s, admin, "POST", "/api/v1/connections/nope/authorize", api.PermissionChange{Pipeline: "gh"}).fails(t, berth.CodeNotFound)
	var changed api.ConnectionChange
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "gh"}).ok(t, http.StatusOK, &changed)
	if !slices.Equal(changed.Pipelines, []string{"gh"}) || changed.AllPipelines {
		t.Errorf("authorized: %+v", changed.Connection)
	}

	// A pipeline that was refused asks; requests lists it and permit grants it.
	gl, err := s.Store.FindPipelineByName(ctx, "gl")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Store.RecordPermissionRequest(ctx, berth.PermissionRequest{ConnectionID: web.ID, PipelineID: gl.ID, Last: s.Clock.Now(), Run: "run-7"}); err != nil {
			t.Fatal(err)
		}
	}
	var reqs api.PermissionRequestList
	r = call(t, s, admin, "GET", "/api/v1/connections/web/requests", nil)
	r.ok(t, http.StatusOK, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].Pipeline != "gl" || reqs.Requests[0].Count != 2 || reqs.Requests[0].Run != "run-7" {
		t.Errorf("requests: %s", r.body)
	}
	var detail api.ConnectionDetail
	call(t, s, admin, "GET", "/api/v1/connections/web", nil).ok(t, http.StatusOK, &detail)
	if detail.PendingRequests != 1 || detail.Principal != "ci" {
		t.Errorf("show: %+v", detail)
	}
	call(t, s, admin, "POST", "/api/v1/connections/web/permit", api.PermissionChange{}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/web/permit", api.PermissionChange{AllPipelines: true}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/permit", api.PermissionChange{Pipeline: "gl"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/web/permit", api.PermissionChange{Pipeline: "gl"}).ok(t, http.StatusOK, &changed)
	if !slices.Equal(changed.Pipelines, []string{"gh", "gl"}) {
		t.Errorf("permitted: %v", changed.Pipelines)
	}
	call(t, s, admin, "GET", "/api/v1/connections/web/requests", nil).ok(t, http.StatusOK, &reqs)
	if len(reqs.Requests) != 0 || reqs.Requests == nil {
		t.Errorf("requests after permit: %+v", reqs)
	}

	call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{Pipeline: "gh"}).ok(t, http.StatusOK, &changed)
	if !slices.Equal(changed.Pipelines, []string{"gl"}) {
		t.Errorf("unauthorized gh: %v", changed.Pipelines)
	}
	call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{Pipeline: "gh"}).fails(t, berth.CodeNotFound)
	call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{AllPipelines: true}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{AllPipelines: true}).ok(t, http.StatusOK, &changed)
	if !changed.AllPipelines {
		t.Errorf("all pipelines: %+v", changed.Connection)
	}
	e = call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{Pipeline: "gh"}).fails(t, berth.CodeConflict)
	if !strings.Contains(hint(e), "--all-pipelines") {
		t.Errorf("unauthorize one of all: %v", e)
	}
	call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{AllPipelines: true}).ok(t, http.StatusOK, &changed)
	if changed.AllPipelines || !slices.Equal(changed.Pipelines, []string{"gl"}) {
		t.Errorf("all withdrawn: %+v", changed.Connection)
	}

	// Disable and enable.
	call(t, s, admin, "POST", "/api/v1/connections/web/disable", nil).ok(t, http.StatusOK, &changed)
	if !changed.Disabled {
		t.Errorf("disable: %+v", changed.Connection)
	}
	call(t, s, admin, "POST", "/api/v1/connections/web/enable", nil).ok(t, http.StatusOK, &changed)
	if changed.Disabled {
		t.Errorf("enable: %+v", changed.Connection)
	}

	var list api.ConnectionList
	call(t, s, admin, "GET", "/api/v1/connections", nil).ok(t, http.StatusOK, &list)
	if len(list.Connections) != 2 || list.Connections[0].Name != "legacy" || list.Connections[1].Name != "web" ||
		!slices.Equal(list.Connections[1].Pipelines, []string{"gl"}) || list.Connections[0].Secret == nil {
		t.Errorf("list: %+v", list)
	}

	// Deleting a secret connection revokes its secret.
	var deleted api.DeletedConnection
	call(t, s, admin, "DELETE", "/api/v1/connections/legacy", nil).ok(t, http.StatusOK, &deleted)
	if !deleted.SecretRevoked || deleted.Name != "legacy" {
		t.Errorf("deleted: %+v", deleted)
	}
	call(t, s, creds{"ci", value}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretRevoked)
	call(t, s, admin, "GET", "/api/v1/connections/legacy", nil).fails(t, berth.CodeNotFound)
	call(t, s, admin, "DELETE", "/api/v1/connections/legacy", nil).fails(t, berth.CodeNotFound)
	call(t, s, admin, "DELETE", "/api/v1/connections/web", nil).ok(t, http.StatusOK, nil)
	if _, err := s.Store.FindPipelineByID(ctx, gh.ID); err != nil {
		t.Errorf("deleting a connection touched its pipeline: %v", err)
	}

	// Everything needs owner on registry.
	_, secret := s.AddPrincipal(t, "dev", apitest.Role{Role: "push", Scope: "team/*"})
	dev := creds{"dev", secret}
	for _, rq := range []struct{ method, path string }{
		{"POST", "/api/v1/connections"}, {"GET", "/api/v1/connections"}, {"GET", "/api/v1/connections/web"},
		{"DELETE", "/api/v1/connections/web"}, {"POST", "/api/v1/connections/web/authorize"}, {"POST", "/api/v1/connections/web/unauthorize"},
		{"POST", "/api/v1/connections/web/permit"}, {"GET", "/api/v1/connections/web/requests"}, {"POST", "/api/v1/connections/web/disable"},
		{"POST", "/api/v1/connections/web/enable"}, {"POST", "/api/v1/connections/web/save"}, {"POST", "/api/v1/connections/web/convert"},
		{"GET", "/api/v1/connections/web/verify"}, {"GET", "/api/v1/connections/web/history"},
	} {
		var body any
		if rq.method == "POST" {
			body = map[string]any{}
		}
		call(t, s, dev, rq.method, rq.path, body).fails(t, berth.CodeRoleMissing)
	}
	s.NoSecretsLogged(t, value, s.AdminSecret)
}

// TestConnectionRenewal renews a secret connection: the previous secret
// keeps working through the grace period and not after.
func TestConnectionRenewal(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	var created api.ConnectionChange
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "legacy", Principal: "ci", Auth: "secret"}).
		ok(t, http.StatusCreated, &created)
	old := created.NewSecret.Value

	// Refresh tokens obtained with the old secret keep working too.
	ctx := context.Background()
	caller, err := s.Provider.AuthenticateClient(ctx, "ci", old, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := s.Provider.IssueRefreshToken(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}

	s.Clock.Advance(time.Hour)
	r := call(t, s, admin, "POST", "/api/v1/connections/legacy/save", nil)
	var saved api.ConnectionChange
	r.ok(t, http.StatusOK, &saved)
	hasFields(t, "a renewal's new secret", fields(t, r.body)["new_secret"].(map[string]any), "id", "hint", "value", "expires_at")
	now := apitest.Epoch.Add(time.Hour)
	if saved.NewSecret == nil || saved.NewSecret.Value == old || saved.Secret.ID != saved.NewSecret.ID {
		t.Fatalf("saved: %s", r.body)
	}
	if saved.PreviousSecret == nil || saved.PreviousSecret.ID != created.NewSecret.ID || !saved.PreviousSecret.Expires.Equal(now.Add(berth.DefaultRenewalGrace)) {
		t.Errorf("previous secret %+v, want it to expire at %v", saved.PreviousSecret, now.Add(berth.DefaultRenewalGrace))
	}
	fresh := saved.NewSecret.Value

	s.Clock.Advance(berth.DefaultRenewalGrace - time.Minute)
	call(t, s, creds{"ci", old}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)
	if _, err := s.Provider.RedeemRefreshToken(ctx, refresh.Reveal(), "127.0.0.1"); err != nil {
		t.Errorf("the old secret's refresh token within the grace period: %v", err)
	}
	s.Clock.Advance(2 * time.Minute)
	call(t, s, creds{"ci", old}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretExpired)
	call(t, s, creds{"ci", fresh}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)

	// A grace period of its own, and 0 to end the previous secret at once.
	call(t, s, admin, "POST", "/api/v1/connections/legacy/save", api.RenewRequest{Grace: "1h"}).ok(t, http.StatusOK, &saved)
	if !saved.PreviousSecret.Expires.Equal(s.Clock.Now().Add(time.Hour)) {
		t.Errorf("grace 1h: previous expires %v", saved.PreviousSecret.Expires)
	}
	third := saved.NewSecret.Value
	call(t, s, admin, "POST", "/api/v1/connections/legacy/save", api.RenewRequest{Grace: "0", ExpiresIn: "30d"}).ok(t, http.StatusOK, &saved)
	call(t, s, creds{"ci", third}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretExpired)
	call(t, s, creds{"ci", fresh}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil) // still in its hour
	if !saved.NewSecret.Expires.Equal(s.Clock.Now().Add(30 * 24 * time.Hour)) {
		t.Errorf("expires_in 30d: %v", saved.NewSecret.Expires)
	}
	call(t, s, admin, "POST", "/api/v1/connections/legacy/save", api.RenewRequest{Grace: "-1d"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/save", api.RenewRequest{Grace: "91d"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/nope/save", nil).fails(t, berth.CodeNotFound)

	// Federated connections hold no secret to renew.
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci"}).ok(t, http.StatusCreated, nil)
	e := call(t, s, admin, "POST", "/api/v1/connections/web/save", nil).fails(t, berth.CodeInvalid)
	if !strings.Contains(hint(e), "berth connection") {
		t.Errorf("save federated: %v", e)
	}
}

// TestConnectionConvert moves a connection off secrets and back.
func TestConnectionConvert(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	var created api.ConnectionChange
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "legacy", Principal: "ci", Auth: "secret"}).
		ok(t, http.StatusCreated, &created)
	old := created.NewSecret.Value

	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", api.ConvertRequest{To: "secret"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", api.ConvertRequest{To: "oidc"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", nil).fails(t, berth.CodeInvalid)

	var conv api.ConnectionChange
	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", api.ConvertRequest{To: "federated", Grace: "2d"}).ok(t, http.StatusOK, &conv)
	if conv.Auth != berth.ConnectionFederated || conv.Secret != nil || conv.NewSecret != nil || conv.PreviousSecret == nil ||
		!conv.PreviousSecret.Expires.Equal(apitest.Epoch.Add(48*time.Hour)) {
		t.Fatalf("to federated: %+v", conv)
	}
	c, err := s.Store.FindConnectionByName(context.Background(), "legacy")
	if err != nil || c.SecretID != "" {
		t.Errorf("stored after conversion: %+v, %v", c, err)
	}
	// The old secret works through its grace period, and no longer after.
	call(t, s, creds{"ci", old}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)
	s.Clock.Advance(48 * time.Hour)
	call(t, s, creds{"ci", old}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretExpired)

	// Now authorize works; back to a secret, with a new one shown once.
	addPipeline(t, s, api.CreatePipelineRequest{Name: "gh"})
	call(t, s, admin, "POST", "/api/v1/connections/legacy/authorize", api.PermissionChange{Pipeline: "gh"}).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", api.ConvertRequest{To: "secret", Grace: "1d"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/connections/legacy/convert", api.ConvertRequest{To: "secret"}).ok(t, http.StatusOK, &conv)
	if conv.Auth != berth.ConnectionSecret || conv.NewSecret == nil || conv.Secret == nil || conv.Secret.ID != conv.NewSecret.ID {
		t.Fatalf("to secret: %+v", conv)
	}
	call(t, s, creds{"ci", conv.NewSecret.Value}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)
}

// closedIssuer returns a loopback URL on which nothing listens.
func closedIssuer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func verify(t *testing.T, s *apitest.Server, name string) (berth.ConnectionReport, map[string]berth.Check) {
	t.Helper()
	var v berth.ConnectionReport
	r := call(t, s, adminCreds(s), "GET", "/api/v1/connections/"+name+"/verify", nil)
	r.ok(t, http.StatusOK, &v)
	hasFields(t, "a verification", fields(t, r.body), "ok", "checks")
	checks := map[string]berth.Check{}
	for _, c := range v.Checks {
		checks[c.Name] = c
	}
	return v, checks
}

func wantCheck(t *testing.T, checks map[string]berth.Check, name string, status berth.CheckStatus, contains ...string) berth.Check {
	t.Helper()
	c, ok := checks[name]
	if !ok {
		t.Errorf("no check %q among %v", name, checks)
		return c
	}
	if c.Status != status {
		t.Errorf("check %s: status %s, want %s (%s; fix: %s)", name, c.Status, status, c.Message, c.Hint)
	}
	for _, s := range contains {
		if !strings.Contains(c.Message+" "+c.Hint, s) {
			t.Errorf("check %s: %q (fix %q) does not say %q", name, c.Message, c.Hint, s)
		}
	}
	return c
}

func TestVerifySecretConnection(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	ci, _ := s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "legacy", Principal: "ci", Auth: "secret",
		Intents: []api.IntentRequest{{Repository: "team/web", Actions: []string{"push"}}}}).ok(t, http.StatusCreated, nil)

	// Healthy.
	v, checks := verify(t, s, "legacy")
	if !v.OK {
		t.Errorf("healthy connection not ok: %+v", v)
	}
	wantCheck(t, checks, "connection", berth.CheckOK)
	wantCheck(t, checks, "principal", berth.CheckOK, "ci")
	wantCheck(t, checks, "secret", berth.CheckOK, "90 days")
	wantCheck(t, checks, "access team/web", berth.CheckOK)

	// Under 30 days: a warning, still ok.
	s.Clock.Advance(70 * 24 * time.Hour)
	v, checks = verify(t, s, "legacy")
	if !v.OK {
		t.Errorf("a warning made the connection fail: %+v", v)
	}
	wantCheck(t, checks, "secret", berth.CheckWarn, "in 20 days", "berth connection save legacy")

	// Expired.
	s.Clock.Advance(25 * 24 * time.Hour)
	v, checks = verify(t, s, "legacy")
	if v.OK {
		t.Errorf("an expired secret passed: %+v", v)
	}
	wantCheck(t, checks, "secret", berth.CheckFail, "expired", "5 days ago", "berth connection save legacy")

	// A missing role names the command that grants it.
	s.Clock.Advance(-95 * 24 * time.Hour)
	call(t, s, admin, "DELETE", "/api/v1/roles?principal=ci&role=push&scope=team/*", nil).ok(t, http.StatusOK, nil)
	s.Assign(t, ci, apitest.Role{Role: "pull", Scope: "team/*"})
	v, checks = verify(t, s, "legacy")
	if v.OK {
		t.Errorf("a missing role passed: %+v", v)
	}
	c := wantCheck(t, checks, "access team/web", berth.CheckFail, "push")
	if c.Hint != "berth role assign --principal ci --role push --scope team/web" {
		t.Errorf("missing role hint %q", c.Hint)
	}

	// A disabled connection and principal fail.
	call(t, s, admin, "POST", "/api/v1/connections/legacy/disable", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/principals/ci/disable", nil).ok(t, http.StatusOK, nil)
	_, checks = verify(t, s, "legacy")
	wantCheck(t, checks, "connection", berth.CheckFail, "berth connection enable legacy")
	wantCheck(t, checks, "principal", berth.CheckFail, "berth principal enable ci")

	call(t, s, admin, "GET", "/api/v1/connections/nope/verify", nil).fails(t, berth.CodeNotFound)
}

func TestVerifyMissingRoles(t *testing.T) {
	s := apitest.New(t)
	s.AddPrincipal(t, "ci")
	call(t, s, adminCreds(s), "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci", Auth: "secret",
		Intents: []api.IntentRequest{{Repository: "team/*", Actions: []string{"push", "delete"}}}}).ok(t, http.StatusCreated, nil)
	_, checks := verify(t, s, "web")
	// push covers pull: two roles, not three.
	c := wantCheck(t, checks, "access team/*", berth.CheckFail)
	want := "berth role assign --principal ci --role delete --scope team/*; berth role assign --principal ci --role push --scope team/*"
	if c.Hint != want {
		t.Errorf("hint %q, want %q", c.Hint, want)
	}
}

// TestVerifyFederatedConnection checks the issuers of the permitted
// pipelines with the Server's real Federation: a live loopback issuer, a key
// set registered with the pipeline, and an issuer nothing answers for.
func TestVerifyFederatedConnection(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci",
		Intents: []api.IntentRequest{{Repository: "team/web", Actions: []string{"push"}}}}).ok(t, http.StatusCreated, nil)

	// No pipeline permitted: a warning naming the command.
	v, checks := verify(t, s, "web")
	if !v.OK {
		t.Errorf("no pipeline permitted made verify fail: %+v", v)
	}
	wantCheck(t, checks, "pipelines", berth.CheckWarn, "berth connection authorize web --pipeline")

	issuer := oidctest.New(t)
	addPipeline(t, s, api.CreatePipelineRequest{Name: "live", Issuer: issuer.URL, Subject: "repo:org/web:*"})
	addPipeline(t, s, api.CreatePipelineRequest{Name: "airgap", Issuer: "https://kubernetes.default.svc", Subject: "system:serviceaccount:ci:*",
		JWKS: testJWKS(t)})
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "live"}).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "airgap"}).ok(t, http.StatusOK, nil)
	v, checks = verify(t, s, "web")
	if !v.OK {
		t.Errorf("healthy federated connection: %+v", v)
	}
	wantCheck(t, checks, "issuer live", berth.CheckOK, "1 key", issuer.URL)
	wantCheck(t, checks, "issuer airgap", berth.CheckOK, "registered with the pipeline")
	wantCheck(t, checks, "access team/web", berth.CheckOK)
	if _, ok := checks["secret"]; ok {
		t.Errorf("a federated connection had its secret checked: %v", checks)
	}

	// An issuer that cannot be reached fails, with the facts.
	addPipeline(t, s, api.CreatePipelineRequest{Name: "gone", Issuer: closedIssuer(t), Subject: "x"})
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "gone"}).ok(t, http.StatusOK, nil)
	v, checks = verify(t, s, "web")
	if v.OK {
		t.Errorf("an unreachable issuer passed: %+v", v)
	}
	c := wantCheck(t, checks, "issuer gone", berth.CheckFail, "gone")
	if c.Hint == "" {
		t.Errorf("unreachable issuer without a fix: %+v", c)
	}

	// all_pipelines checks every registered pipeline.
	call(t, s, admin, "POST", "/api/v1/connections/web/unauthorize", api.PermissionChange{Pipeline: "gone"}).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{AllPipelines: true}).ok(t, http.StatusOK, nil)
	_, checks = verify(t, s, "web")
	wantCheck(t, checks, "issuer gone", berth.CheckFail)
	wantCheck(t, checks, "issuer live", berth.CheckOK)
}

func TestConnectionHistory(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)
	ctx := context.Background()
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci"}).ok(t, http.StatusCreated, nil)
	now := s.Clock.Now()
	uses := []berth.AuditEvent{
		{Time: now.Add(-48 * time.Hour), Actor: "ci", Action: berth.AuditAuthToken, Target: "web", Result: berth.AuditAllowed, Connection: "web", Pipeline: "gh",
			Detail: map[string]string{"ci_run": "100"}},
		{Time: now.Add(-time.Hour), Actor: "ci", Action: berth.AuditRegistryPush, Target: "team/web", Result: berth.AuditAllowed, Connection: "web", Pipeline: "gh",
			Detail: map[string]string{"ci_run": "101"}},
		{Time: now.Add(-time.Minute), Action: berth.AuditAuthToken, Target: "web", Result: berth.AuditDenied, Reason: berth.CodePipelineNotAuthorized,
			Connection: "web", Pipeline: "fork", Detail: map[string]string{"ci_run": "102", "message": "pipeline fork is not permitted"}},
		{Time: now, Actor: "ci", Action: berth.AuditRegistryPull, Target: "team/api", Result: berth.AuditAllowed, Connection: "api"},
	}
	if err := s.Store.AppendAuditEvents(ctx, uses); err != nil {
		t.Fatal(err)
	}
	var h api.ConnectionHistory
	r := call(t, s, admin, "GET", "/api/v1/connections/web/history?since=24h", nil)
	r.ok(t, http.StatusOK, &h)
	// The creation (audited with the connection named) and the two uses of the last day.
	if len(h.Events) != 3 || h.Events[0].Action != berth.AuditConnectionCreate || h.Events[1].CIRun != "101" ||
		h.Events[2].Reason != berth.CodePipelineNotAuthorized || h.Events[2].Pipeline != "fork" || h.Events[2].Message == "" {
		t.Errorf("history since 24h: %s", r.body)
	}
	hasFields(t, "a history event", fields(t, r.body)["events"].([]any)[1].(map[string]any),
		"time", "pipeline", "ci_run", "action", "target", "result", "reason")
	call(t, s, admin, "GET", "/api/v1/connections/web/history?limit=1", nil).ok(t, http.StatusOK, &h)
	if len(h.Events) != 1 || h.Events[0].CIRun != "102" {
		t.Errorf("the last event: %+v", h.Events)
	}
	call(t, s, admin, "GET", "/api/v1/connections/web/history?limit=0", nil).fails(t, berth.CodeInvalid)
	call(t, s, admin, "GET", "/api/v1/connections/web/history?since=soon", nil).fails(t, berth.CodeInvalid)
	call(t, s, admin, "GET", "/api/v1/connections/nope/history", nil).fails(t, berth.CodeNotFound)

	// A deleted connection's history remains readable.
	call(t, s, admin, "DELETE", "/api/v1/connections/web", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "GET", "/api/v1/connections/web/history", nil).ok(t, http.StatusOK, &h)
	if n := len(h.Events); n != 5 || h.Events[n-1].Action != berth.AuditConnectionDelete {
		t.Errorf("history of a deleted connection: %+v", h.Events)
	}
}
