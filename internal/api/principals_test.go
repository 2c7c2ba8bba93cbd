package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestAuthentication(t *testing.T) {
	s := apitest.New(t)
	_, ciSecret := s.AddPrincipal(t, "ci")

	t.Run("no credentials", func(t *testing.T) {
		r := call(t, s, creds{}, "GET", "/api/v1/principals", nil)
		e := r.fails(t, berth.CodeCredentialsMissing)
		if !strings.Contains(hint(e), "BERTH_CLIENT_ID") {
			t.Errorf("hint %q does not name BERTH_CLIENT_ID", hint(e))
		}
		if len(r.header.Values("WWW-Authenticate")) == 0 {
			t.Error("401 without WWW-Authenticate")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		call(t, s, creds{"ci", s.AdminSecret}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretInvalid)
	})
	t.Run("unknown client", func(t *testing.T) {
		// An unknown name is refused as a wrong secret is (names are guessable).
		call(t, s, creds{"nobody", ciSecret}, "GET", "/api/v1/principals", nil).fails(t, berth.CodeSecretInvalid)
	})
	t.Run("bearer token", func(t *testing.T) {
		token := adminToken(t, s, "registry:api:pull")
		callBearer(t, s, token, "GET", "/api/v1/principals", nil).ok(t, http.StatusOK, nil)
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		r := call(t, s, adminCreds(s), "GET", "/api/v1/nothing", nil)
		r.fails(t, berth.CodeNotFound)
		// The hint lists every collection the API routes, not a few.
		var e api.ErrorBody
		_ = json.Unmarshal(r.body, &e)
		for _, c := range []string{"/api/v1/principals", "/api/v1/pull-secrets", "/api/v1/upstreams", "/api/v1/retention"} {
			if !strings.Contains(e.Error.Hint, c) {
				t.Errorf("the unknown endpoint's hint %q does not name %s", e.Error.Hint, c)
			}
		}
		call(t, s, adminCreds(s), "PUT", "/api/v1/principals", nil).fails(t, berth.CodeNotFound)
		// Even a wrong path needs credentials.
		call(t, s, creds{}, "GET", "/api/v1/nothing", nil).fails(t, berth.CodeCredentialsMissing)
	})
	s.NoSecretsLogged(t, s.AdminSecret, ciSecret)
}

func TestPrincipalLifecycle(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)

	r := call(t, s, admin, "POST", "/api/v1/principals", map[string]string{"name": "ci-web"})
	var p berth.Principal
	r.ok(t, http.StatusCreated, &p)
	hasFields(t, "a new principal", fields(t, r.body), "name", "client_id", "id", "kind", "disabled", "created_at")
	if p.Name != "ci-web" || p.Kind != berth.PrincipalService || p.Disabled || !p.Created.Equal(apitest.Epoch) {
		t.Errorf("created %+v", p)
	}
	if _, err := berth.ParseClientID(p.ClientID); err != nil {
		t.Errorf("client id %q: %v", p.ClientID, err)
	}

	var list api.PrincipalList
	call(t, s, admin, "GET", "/api/v1/principals", nil).ok(t, http.StatusOK, &list)
	if len(list.Principals) != 2 || list.Principals[0].Name != "admin" || list.Principals[1].Name != "ci-web" {
		t.Errorf("list: %+v", list)
	}
	// Pages.
	call(t, s, admin, "GET", "/api/v1/principals?limit=1", nil).ok(t, http.StatusOK, &list)
	if len(list.Principals) != 1 || list.Next != "admin" {
		t.Errorf("page 1: %+v", list)
	}
	call(t, s, admin, "GET", "/api/v1/principals?limit=1&after=admin", nil).ok(t, http.StatusOK, &list)
	if len(list.Principals) != 1 || list.Principals[0].Name != "ci-web" {
		t.Errorf("page 2: %+v", list)
	}
	call(t, s, admin, "GET", "/api/v1/principals?limit=x", nil).fails(t, berth.CodeInvalid)

	var detail api.PrincipalDetail
	call(t, s, admin, "GET", "/api/v1/principals/admin", nil).ok(t, http.StatusOK, &detail)
	if detail.ClientID != s.Admin.ClientID || len(detail.Roles) != 1 || detail.Roles[0].Role != berth.RoleOwner || detail.Roles[0].Scope != "registry" {
		t.Errorf("show admin: %+v", detail)
	}

	// Disabling stops the principal's own credentials at once.
	_, ciSecret := s.AddPrincipal(t, "ci")
	ci := creds{"ci", ciSecret}
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/principals/ci/disable", nil).ok(t, http.StatusOK, &p)
	if !p.Disabled {
		t.Errorf("disable answered %+v", p)
	}
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodePrincipalDisabled)
	call(t, s, admin, "POST", "/api/v1/principals/ci/disable", nil).ok(t, http.StatusOK, &p) // again: no change
	call(t, s, admin, "POST", "/api/v1/principals/ci/enable", nil).ok(t, http.StatusOK, &p)
	if p.Disabled {
		t.Errorf("enable answered %+v", p)
	}
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)

	// Deleting takes the secrets, the refresh tokens and the roles with it.
	ciP, err := s.Store.FindPrincipalByName(context.Background(), "ci")
	if err != nil {
		t.Fatal(err)
	}
	s.Assign(t, ciP, apitest.Role{Role: "push", Scope: "team/*"})
	caller, err := s.Provider.AuthenticateClient(context.Background(), "ci", ciSecret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := s.Provider.IssueRefreshToken(context.Background(), caller)
	if err != nil {
		t.Fatal(err)
	}
	var deleted api.DeletedPrincipal
	call(t, s, admin, "DELETE", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, &deleted)
	if deleted.Name != "ci" || deleted.RolesRemoved != 1 || deleted.RefreshTokensRevoked != 1 {
		t.Errorf("delete answered %+v", deleted)
	}
	call(t, s, admin, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeNotFound)
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretInvalid) // a deleted name is as unknown as any
	if _, err := s.Provider.RedeemRefreshToken(context.Background(), refresh.Reveal(), "127.0.0.1"); !berth.IsCode(err, berth.CodeRefreshTokenInvalid) {
		t.Errorf("refresh token of a deleted principal: %v, want refresh_token_invalid", err)
	}
	as, err := s.Store.FindRoleAssignments(context.Background(), berth.RoleAssignmentFilter{Scope: mustScope(t, "team/*")})
	if err != nil || len(as) != 0 {
		t.Errorf("assignments on team/* after delete: %v, %v", as, err)
	}
	s.NoSecretsLogged(t, s.AdminSecret, ciSecret)
}

func TestPrincipalRefusals(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	_, puller := s.AddPrincipal(t, "puller", apitest.Role{Role: "pull", Scope: "registry"})
	_, teamOwner := s.AddPrincipal(t, "team-owner", apitest.Role{Role: "owner", Scope: "team/*"})

	for _, tc := range []struct {
		name   string
		c      creds
		method string
		path   string
		body   any
		code   berth.Code
		hint   string // a part of the hint, when set
	}{
		{"invalid name", admin, "POST", "/api/v1/principals", map[string]string{"name": "CI Web"}, berth.CodeInvalid, ""},
		{"upper case", admin, "POST", "/api/v1/principals", map[string]string{"name": "CI"}, berth.CodeInvalid, "use ci"},
		{"UUID name", admin, "POST", "/api/v1/principals", map[string]string{"name": "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70"}, berth.CodeInvalid, ""},
		{"unknown kind", admin, "POST", "/api/v1/principals", map[string]string{"name": "x", "kind": "robot"}, berth.CodeInvalid, ""},
		{"duplicate", admin, "POST", "/api/v1/principals", map[string]string{"name": "puller"}, berth.CodeConflict, "berth principal show puller"},
		{"anonymous", admin, "POST", "/api/v1/principals", map[string]string{"name": "anonymous"}, berth.CodeInvalid, "berth role assign --principal anonymous"},
		{"unknown field", admin, "POST", "/api/v1/principals", `{"name":"x","nmae":"y"}`, berth.CodeInvalid, ""},
		{"empty body", admin, "POST", "/api/v1/principals", nil, berth.CodeInvalid, ""},
		{"not JSON", admin, "POST", "/api/v1/principals", "name=x", berth.CodeInvalid, ""},
		{"two values", admin, "POST", "/api/v1/principals", `{"name":"x"} {}`, berth.CodeInvalid, ""},
		{"not owner creates", creds{"puller", puller}, "POST", "/api/v1/principals", map[string]string{"name": "x"}, berth.CodeRoleMissing,
			"berth role assign --principal puller --role owner --scope registry"},
		{"namespace owner creates", creds{"team-owner", teamOwner}, "POST", "/api/v1/principals", map[string]string{"name": "x"}, berth.CodeRoleMissing, ""},
		{"not owner lists", creds{"puller", puller}, "GET", "/api/v1/principals", nil, berth.CodeRoleMissing, ""},
		{"not owner shows another", creds{"puller", puller}, "GET", "/api/v1/principals/admin", nil, berth.CodeRoleMissing, ""},
		{"not owner disables", creds{"puller", puller}, "POST", "/api/v1/principals/team-owner/disable", nil, berth.CodeRoleMissing, ""},
		{"not owner deletes", creds{"puller", puller}, "DELETE", "/api/v1/principals/team-owner", nil, berth.CodeRoleMissing, ""},
		{"unknown principal", admin, "GET", "/api/v1/principals/nobody", nil, berth.CodeNotFound, "berth principal list"},
		{"unknown disabled", admin, "POST", "/api/v1/principals/nobody/disable", nil, berth.CodeNotFound, ""},
		{"unknown deleted", admin, "DELETE", "/api/v1/principals/nobody", nil, berth.CodeNotFound, ""},
		{"invalid name shown", admin, "GET", "/api/v1/principals/No%20Body", nil, berth.CodeInvalid, ""},
		{"delete yourself", admin, "DELETE", "/api/v1/principals/admin", nil, berth.CodeInvalid, "another owner"},
		{"disable yourself", admin, "POST", "/api/v1/principals/admin/disable", nil, berth.CodeInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := call(t, s, tc.c, tc.method, tc.path, tc.body).fails(t, tc.code)
			if tc.hint != "" && !strings.Contains(hint(e), tc.hint) {
				t.Errorf("hint %q does not hold %q", hint(e), tc.hint)
			}
		})
	}

	// A principal may always show itself.
	call(t, s, creds{"puller", puller}, "GET", "/api/v1/principals/puller", nil).ok(t, http.StatusOK, nil)

	// Nothing was created by the refused requests.
	ps, err := s.Store.FindPrincipals(context.Background(), berth.PrincipalFilter{})
	if err != nil || len(ps) != 3 {
		t.Errorf("principals after refusals: %v, %v", ps, err)
	}
}

func TestAnonymousPrincipal(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	var a api.RoleAssignment
	// The first assignment creates it; it may hold only pull.
	call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "anonymous", Role: "push", Scope: "public/*"}).fails(t, berth.CodeInvalid)
	if _, err := s.Store.FindPrincipalByName(context.Background(), "anonymous"); !berth.IsCode(err, berth.CodeNotFound) {
		t.Fatalf("a refused assignment created anonymous: %v", err)
	}
	call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "anonymous", Role: "pull", Scope: "public/*"}).ok(t, http.StatusCreated, &a)
	if a.Principal != "anonymous" || a.Role != berth.RolePull || a.Scope != "public/*" {
		t.Errorf("assigned %+v", a)
	}
	call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "anonymous", Role: "owner", Scope: "public/*"}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/principals/anonymous/secrets", map[string]string{}).fails(t, berth.CodeInvalid)
	call(t, s, admin, "POST", "/api/v1/principals/anonymous/disable", nil).fails(t, berth.CodeInvalid)

	// Anonymous requests now pull public/*, and nothing else.
	var d api.AccessCheck
	call(t, s, admin, "GET", "/api/v1/access/check?principal=anonymous&action=pull&repository=public/app", nil).ok(t, http.StatusOK, &d)
	if !d.Allowed {
		t.Errorf("anonymous pull of public/app: %+v", d)
	}
	call(t, s, admin, "GET", "/api/v1/access/check?principal=anonymous&action=pull&repository=private/app", nil).ok(t, http.StatusOK, &d)
	if d.Allowed || d.Reason != berth.CodeCredentialsMissing {
		t.Errorf("anonymous pull of private/app: %+v", d)
	}

	// Deleting it makes nothing public any more.
	var deleted api.DeletedPrincipal
	call(t, s, admin, "DELETE", "/api/v1/principals/anonymous", nil).ok(t, http.StatusOK, &deleted)
	if deleted.RolesRemoved != 1 {
		t.Errorf("delete anonymous: %+v", deleted)
	}
	call(t, s, admin, "GET", "/api/v1/access/check?principal=anonymous&action=pull&repository=public/app", nil).ok(t, http.StatusOK, &d)
	if d.Allowed {
		t.Errorf("anonymous pull after deleting anonymous: %+v", d)
	}
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	s := apitest.New(t)
	s.Store.Close()
	r := call(t, s, adminCreds(s), "GET", "/api/v1/principals", nil)
	e := r.fails(t, berth.CodeInternal)
	id := r.header.Get("X-Request-Id")
	if msg := e["message"].(string); msg != "internal error (request id "+id+")" {
		t.Errorf("message %q, want the request id %s and nothing else", msg, id)
	}
	if e["request_id"] != id {
		t.Errorf("request_id %v, want %s", e["request_id"], id)
	}
	if log := s.Log.String(); !strings.Contains(log, "internal error") || !strings.Contains(log, id) {
		t.Errorf("the log does not record the internal error with its request id:\n%s", log)
	}
}

func mustScope(t *testing.T, s string) berth.Scope {
	t.Helper()
	sc, err := berth.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
