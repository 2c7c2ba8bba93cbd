package api_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/oidctest"
)

// TestPipelineCannotCreatePersonalTokens checks that a pipeline that logs in
// through a connection whose principal is a person cannot create that
// person's personal access tokens, which would outlive its permission,
// with an access token issued for the API or with its refresh token.
func TestPipelineCannotCreatePersonalTokens(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	ctx := context.Background()
	person, err := berth.NewPrincipal(rand.Reader, "ada", berth.PrincipalUser, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreatePrincipal(ctx, person); err != nil {
		t.Fatal(err)
	}
	s.Assign(t, person, apitest.Role{Role: "push", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ada"}).ok(t, http.StatusCreated, nil)
	issuer := oidctest.New(t)
	issuer.Now = s.Clock.Now
	addPipeline(t, s, api.CreatePipelineRequest{Name: "live", Issuer: issuer.URL, Subject: "repo:org/web:*"})
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "live"}).ok(t, http.StatusOK, nil)

	caller, err := s.Provider.Exchange(ctx, issuer.GitHub(oidctest.GitHubJob{Repository: "org/web", Audience: s.Provider.Service}), "web", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if caller.Principal == nil || caller.Principal.Kind != berth.PrincipalUser || caller.Connection != "web" {
		t.Fatalf("the exchange's caller: %+v, want ada through web", caller)
	}
	token, _, err := s.Provider.IssueAccessToken(caller, []berth.ResourceActions{{Type: berth.ResourceRegistry, Name: berth.ResourceAPI, Actions: []string{berth.DockerActionAll}}})
	if err != nil {
		t.Fatal(err)
	}
	body := api.CreateTokenRequest{Scopes: []string{"repository:team/app:pull"}}
	refusal := callBearer(t, s, token, "POST", "/api/v1/tokens", body).fails(t, berth.CodeScopeNotGranted)
	if d, _ := refusal["detail"].(map[string]any); d["connection"] != "web" {
		t.Errorf("the refusal's facts %v do not name the connection", refusal["detail"])
	}
	refresh, _, err := s.Provider.IssueRefreshToken(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}
	call(t, s, creds{"<token>", refresh.Reveal()}, "POST", "/api/v1/tokens", body).fails(t, berth.CodeScopeNotGranted)
	var list struct{ Tokens []any }
	call(t, s, admin, "GET", "/api/v1/tokens?principal=ada", nil).ok(t, http.StatusOK, &list)
	if len(list.Tokens) != 0 {
		t.Fatalf("ada holds %d personal access tokens after the refusals", len(list.Tokens))
	}
}
