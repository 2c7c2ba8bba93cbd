package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// adminToken returns an access token of the admin, issued for scope as the
// token endpoint would: the intersection with the admin's roles.
func adminToken(t *testing.T, s *apitest.Server, scope string) string {
	t.Helper()
	return adminTokenAs(t, s, scope, func(*berth.Caller) {})
}

// adminTokenAs is adminToken for the admin's caller as as changes it (a
// pipeline's connection and run, say) before the token is issued.
func adminTokenAs(t *testing.T, s *apitest.Server, scope string, as func(*berth.Caller)) string {
	t.Helper()
	ctx := context.Background()
	caller, err := s.Provider.AuthenticateClient(ctx, s.Admin.ClientID, s.AdminSecret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	as(caller)
	requested, err := berth.ParseDockerScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	granted, err := s.Provider.Grant(ctx, caller, requested)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.Provider.IssueAccessToken(caller, granted)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// An access token works on the management API only when it was issued for
// it: an owner's token narrowed to pulling one repository creates nothing.
// registry:api:pull reads, registry:api:* changes; Basic credentials act with
// the roles alone, as before.
func TestAPINeedsATokenIssuedForIt(t *testing.T) {
	s := apitest.New(t)
	narrow := adminToken(t, s, "repository:team/app:pull")
	callBearer(t, s, narrow, "POST", "/api/v1/principals", map[string]string{"name": "intruder"}).fails(t, berth.CodeScopeNotGranted)
	callBearer(t, s, narrow, "POST", "/api/v1/principals/admin/secrets", map[string]string{"expires_in": "365d"}).fails(t, berth.CodeScopeNotGranted)
	e := callBearer(t, s, narrow, "GET", "/api/v1/principals", nil).fails(t, berth.CodeScopeNotGranted)
	if h := hint(e); h == "" {
		t.Error("scope_not_granted without a hint")
	}
	none := adminToken(t, s, "")
	callBearer(t, s, none, "GET", "/api/v1/principals", nil).fails(t, berth.CodeScopeNotGranted)

	read := adminToken(t, s, "registry:api:pull")
	callBearer(t, s, read, "GET", "/api/v1/principals", nil).ok(t, http.StatusOK, nil)
	callBearer(t, s, read, "POST", "/api/v1/principals", map[string]string{"name": "intruder"}).fails(t, berth.CodeScopeNotGranted)

	all := adminToken(t, s, "registry:api:*")
	callBearer(t, s, all, "POST", "/api/v1/principals", map[string]string{"name": "ci-web"}).ok(t, http.StatusCreated, nil)

	call(t, s, adminCreds(s), "POST", "/api/v1/principals", map[string]string{"name": "ci-db"}).ok(t, http.StatusCreated, nil)
	call(t, s, adminCreds(s), "GET", "/api/v1/principals/intruder", nil).fails(t, berth.CodeNotFound)
}

// The grant of registry:api:* lets a token reach the API; what it may do
// there is still decided by the principal's roles.
func TestAPITokenActsWithTheRolesItHas(t *testing.T) {
	s := apitest.New(t)
	p, secret := s.AddPrincipal(t, "ci")
	caller, err := s.Provider.AuthenticateClient(context.Background(), p.ClientID, secret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	requested, _ := berth.ParseDockerScope("registry:api:*")
	granted, err := s.Provider.Grant(context.Background(), caller, requested)
	if err != nil || len(granted) != 1 {
		t.Fatalf("grant of registry:api:* to a principal without roles: %v, %v", granted, err)
	}
	token, _, err := s.Provider.IssueAccessToken(caller, granted)
	if err != nil {
		t.Fatal(err)
	}
	callBearer(t, s, token, "POST", "/api/v1/principals", map[string]string{"name": "x"}).fails(t, berth.CodeRoleMissing)
}

// A pipeline acting as an owner through a service connection makes no client
// secrets, by any of the paths that make one: a secret would outlive the
// pipeline's permission, where federation meant that no secret exists.
func TestPipelineMintsNoSecrets(t *testing.T) {
	s := apitest.New(t)
	token := adminTokenAs(t, s, "registry:api:*", func(c *berth.Caller) {
		c.Connection, c.Pipeline, c.Run = "deploy", "github-main", "run 7"
	})
	s.AddPrincipal(t, "ci", apitest.Role{Role: "pull", Scope: "registry"})
	for _, tc := range []struct {
		path string
		body any
	}{
		{"/api/v1/principals/ci/secrets", map[string]string{"expires_in": "30d"}},
		{"/api/v1/pull-secrets", api.PullSecretRequest{Name: "pull", Principal: "ci"}},
		{"/api/v1/connections", map[string]string{"name": "legacy", "principal": "ci", "auth": "secret"}},
	} {
		e := callBearer(t, s, token, "POST", tc.path, tc.body).fails(t, berth.CodeScopeNotGranted)
		if d, _ := e["detail"].(map[string]any); d == nil || d["connection"] != "deploy" {
			t.Errorf("POST %s: detail %v, want the connection", tc.path, e["detail"])
		}
	}
	// The same owner logged in with its secret may.
	call(t, s, adminCreds(s), "POST", "/api/v1/principals/ci/secrets", map[string]string{"expires_in": "30d"}).ok(t, http.StatusCreated, nil)
}
