package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func revokePath(principal, role, scope string) string {
	return "/api/v1/roles?" + url.Values{"principal": {principal}, "role": {role}, "scope": {scope}}.Encode()
}

func TestRoleLifecycle(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	_, ciSecret := s.AddPrincipal(t, "ci")
	ci := creds{"ci", ciSecret}

	// Without a role, ci may not read team/web; the assignment works at once.
	var d api.AccessCheck
	call(t, s, ci, "GET", "/api/v1/access/check?action=push&repository=team/web", nil).ok(t, http.StatusOK, &d)
	if d.Allowed {
		t.Fatalf("ci may push before any assignment: %+v", d)
	}

	r := call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "push", Scope: "team/*"})
	var a api.RoleAssignment
	r.ok(t, http.StatusCreated, &a)
	hasFields(t, "an assignment", fields(t, r.body), "principal", "role", "scope", "created_at")
	if a.Principal != "ci" || a.Role != berth.RolePush || a.Scope != "team/*" || a.CreatedBy != s.Admin.ID {
		t.Errorf("assigned %+v", a)
	}
	call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "push", Scope: "team/*"}).fails(t, berth.CodeConflict)

	call(t, s, ci, "GET", "/api/v1/access/check?action=push&repository=team/web", nil).ok(t, http.StatusOK, &d)
	if !d.Allowed || d.Allowing == nil || d.Allowing.Scope.String() != "team/*" {
		t.Errorf("ci push team/web after the assignment: %+v", d)
	}

	var list api.RoleList
	call(t, s, admin, "GET", "/api/v1/roles?principal=ci", nil).ok(t, http.StatusOK, &list)
	if len(list.Roles) != 1 || list.Roles[0].Role != berth.RolePush {
		t.Errorf("roles of ci: %+v", list)
	}
	call(t, s, admin, "GET", "/api/v1/roles", nil).ok(t, http.StatusOK, &list)
	if len(list.Roles) != 2 || list.Roles[0].Principal != "admin" || list.Roles[1].Principal != "ci" {
		t.Errorf("all roles: %+v", list)
	}
	// A principal sees its own assignments, not those on scopes it does not own.
	call(t, s, ci, "GET", "/api/v1/roles", nil).ok(t, http.StatusOK, &list)
	if len(list.Roles) != 1 || list.Roles[0].Principal != "ci" {
		t.Errorf("roles ci sees: %+v", list)
	}

	var revoked api.RoleAssignment
	call(t, s, admin, "DELETE", revokePath("ci", "push", "team/*"), nil).ok(t, http.StatusOK, &revoked)
	if revoked.Role != berth.RolePush || revoked.Scope != "team/*" {
		t.Errorf("revoked %+v", revoked)
	}
	call(t, s, ci, "GET", "/api/v1/access/check?action=push&repository=team/web", nil).ok(t, http.StatusOK, &d)
	if d.Allowed {
		t.Errorf("ci may still push after the revocation: %+v", d)
	}
	e := call(t, s, admin, "DELETE", revokePath("ci", "push", "team/*"), nil).fails(t, berth.CodeNotFound)
	if !strings.Contains(hint(e), "berth role list --principal ci") {
		t.Errorf("hint %q", hint(e))
	}
	s.NoSecretsLogged(t, s.AdminSecret, ciSecret)
}

func TestRoleRefusals(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	_, ciSecret := s.AddPrincipal(t, "ci")
	_, teamOwner := s.AddPrincipal(t, "team-owner", apitest.Role{Role: "owner", Scope: "team/*"})
	owner := creds{"team-owner", teamOwner}

	for _, tc := range []struct {
		name   string
		c      creds
		method string
		path   string
		body   any
		code   berth.Code
		hint   string
	}{
		{"unknown role", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "writer", Scope: "team/*"}, berth.CodeInvalid, "pull, push"},
		{"no role", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Scope: "team/*"}, berth.CodeInvalid, ""},
		{"invalid scope", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "pull", Scope: "team/*/x"}, berth.CodeInvalid, ""},
		{"no scope", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "pull"}, berth.CodeInvalid, ""},
		{"no principal", admin, "POST", "/api/v1/roles", api.RoleRequest{Role: "pull", Scope: "team/*"}, berth.CodeInvalid, ""},
		{"unknown principal", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "nobody", Role: "pull", Scope: "team/*"}, berth.CodeNotFound, ""},
		{"anonymous push", admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "anonymous", Role: "push", Scope: "team/*"}, berth.CodeInvalid, ""},
		{"namespace owner outside its scope", owner, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "pull", Scope: "other/*"}, berth.CodeRoleMissing,
			"berth role assign --principal team-owner --role owner --scope other/*"},
		{"namespace owner on registry", owner, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "pull", Scope: "registry"}, berth.CodeRoleMissing, ""},
		{"not owner revokes", creds{"ci", ciSecret}, "DELETE", revokePath("admin", "owner", "registry"), nil, berth.CodeRoleMissing, ""},
		{"namespace owner revokes outside", owner, "DELETE", revokePath("admin", "owner", "registry"), nil, berth.CodeRoleMissing, ""},
		{"revoke the last owner of registry", admin, "DELETE", revokePath("admin", "owner", "registry"), nil, berth.CodeConflict, "--role owner --scope registry"},
		{"revoke unknown role", admin, "DELETE", revokePath("ci", "boss", "registry"), nil, berth.CodeInvalid, ""},
		{"list unknown principal", admin, "GET", "/api/v1/roles?principal=nobody", nil, berth.CodeNotFound, ""},
		{"list invalid scope", admin, "GET", "/api/v1/roles?scope=a//b", nil, berth.CodeInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := call(t, s, tc.c, tc.method, tc.path, tc.body).fails(t, tc.code)
			if tc.hint != "" && !strings.Contains(hint(e), tc.hint) {
				t.Errorf("hint %q does not hold %q", hint(e), tc.hint)
			}
		})
	}

	// An owner of team/* assigns and revokes within it, and sees what it owns.
	call(t, s, owner, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "push", Scope: "team/web"}).ok(t, http.StatusCreated, nil)
	call(t, s, admin, "POST", "/api/v1/roles", api.RoleRequest{Principal: "ci", Role: "pull", Scope: "other/*"}).ok(t, http.StatusCreated, nil)
	var list api.RoleList
	call(t, s, owner, "GET", "/api/v1/roles?principal=ci", nil).ok(t, http.StatusOK, &list)
	if len(list.Roles) != 1 || list.Roles[0].Scope != "team/web" {
		t.Errorf("roles of ci that team-owner sees: %+v", list)
	}
	call(t, s, owner, "DELETE", revokePath("ci", "push", "team/web"), nil).ok(t, http.StatusOK, nil)

	// With a second enabled owner, the first may step down.
	s.AddPrincipal(t, "ops", apitest.Role{Role: "owner", Scope: "registry"})
	call(t, s, admin, "POST", "/api/v1/principals/ops/disable", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "DELETE", revokePath("admin", "owner", "registry"), nil).fails(t, berth.CodeConflict) // ops is disabled
	call(t, s, admin, "POST", "/api/v1/principals/ops/enable", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "DELETE", revokePath("admin", "owner", "registry"), nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "GET", "/api/v1/principals", nil).fails(t, berth.CodeRoleMissing)
}

func TestAccessCheck(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	_, ciSecret := s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})
	_, teamOwner := s.AddPrincipal(t, "team-owner", apitest.Role{Role: "owner", Scope: "team/*"})
	ci := creds{"ci", ciSecret}

	check := func(c creds, q url.Values) response {
		return call(t, s, c, "GET", "/api/v1/access/check?"+q.Encode(), nil)
	}
	for _, tc := range []struct {
		principal, action, repo string
		allowed                 bool
		reason                  berth.Code
		hint                    string
	}{
		{"ci", "push", "team/web", true, "", ""},
		{"ci", "pull", "team/web/api", true, "", ""},
		{"ci", "content:write", "team/web", true, "", ""},
		{"ci", "delete", "team/web", false, berth.CodeRoleMissing, "berth role assign --principal ci --role delete --scope team/web"},
		{"ci", "push", "other/web", false, berth.CodeRoleMissing, "berth role assign --principal ci --role push --scope other/web"},
		{"ci", "pull", "team", false, berth.CodeRoleMissing, "--role pull --scope team"},
		{"ci", "catalog:list", "", false, berth.CodeRoleMissing, "--role catalog --scope registry"},
		{"anonymous", "pull", "team/web", false, berth.CodeCredentialsMissing, ""},
		{"admin", "delete", "any/thing", true, "", ""},
	} {
		t.Run(tc.principal+" "+tc.action+" "+tc.repo, func(t *testing.T) {
			r := check(admin, url.Values{"principal": {tc.principal}, "action": {tc.action}, "repository": {tc.repo}})
			var d api.AccessCheck
			r.ok(t, http.StatusOK, &d)
			hasFields(t, "a decision", fields(t, r.body), "allowed", "principal", "action", "requested_action")
			if d.Allowed != tc.allowed || d.Reason != tc.reason || !strings.Contains(d.Hint, tc.hint) {
				t.Errorf("decision %+v, want allowed %v reason %q hint %q", d, tc.allowed, tc.reason, tc.hint)
			}
			if !d.Allowed {
				hasFields(t, "a denial", fields(t, r.body), "reason", "hint", "message")
			}
		})
	}

	// Refusals.
	check(admin, url.Values{"principal": {"ci"}, "action": {"write"}, "repository": {"team/web"}}).fails(t, berth.CodeInvalid)
	check(admin, url.Values{"principal": {"ci"}, "repository": {"team/web"}}).fails(t, berth.CodeInvalid)
	check(admin, url.Values{"principal": {"ci"}, "action": {"pull"}}).fails(t, berth.CodeInvalid)
	check(admin, url.Values{"principal": {"ci"}, "action": {"pull"}, "repository": {"Team/Web"}}).fails(t, berth.CodeNameInvalid)
	check(admin, url.Values{"principal": {"nobody"}, "action": {"pull"}, "repository": {"team/web"}}).fails(t, berth.CodeNotFound)
	check(creds{}, url.Values{"action": {"pull"}, "repository": {"team/web"}}).fails(t, berth.CodeCredentialsMissing)
	// Checking another principal needs owner on a scope covering the repository.
	check(ci, url.Values{"principal": {"admin"}, "action": {"pull"}, "repository": {"team/web"}}).fails(t, berth.CodeRoleMissing)
	check(creds{"team-owner", teamOwner}, url.Values{"principal": {"ci"}, "action": {"pull"}, "repository": {"team/web"}}).ok(t, http.StatusOK, nil)
	check(creds{"team-owner", teamOwner}, url.Values{"principal": {"ci"}, "action": {"pull"}, "repository": {"other/web"}}).fails(t, berth.CodeRoleMissing)

	// A disabled principal cannot authenticate, whatever its roles.
	call(t, s, admin, "POST", "/api/v1/principals/ci/disable", nil).ok(t, http.StatusOK, nil)
	var d api.AccessCheck
	check(admin, url.Values{"principal": {"ci"}, "action": {"pull"}, "repository": {"team/web"}}).ok(t, http.StatusOK, &d)
	if d.Allowed || d.Reason != berth.CodePrincipalDisabled || d.Hint != "berth principal enable ci" {
		t.Errorf("decision for a disabled principal: %+v", d)
	}
}

// The access check decides as the registry does: a push into a cache
// namespace is refused with cache_read_only even for an owner, and a pull
// there is not.
func TestAccessCheckCacheNamespace(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	call(t, s, admin, "POST", "/api/v1/upstreams", api.CreateUpstreamRequest{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub"}).ok(t, http.StatusCreated, nil)
	check := func(action, repo string) api.AccessCheck {
		t.Helper()
		var d api.AccessCheck
		call(t, s, admin, "GET", "/api/v1/access/check?"+url.Values{"action": {action}, "repository": {repo}}.Encode(), nil).ok(t, http.StatusOK, &d)
		return d
	}
	for _, action := range []string{"push", "content:write", "metadata:write"} {
		d := check(action, "hub/library/alpine")
		if d.Allowed || d.Reason != berth.CodeCacheReadOnly || d.Allowing != nil || d.Hint == "" {
			t.Errorf("%s into the cache namespace: %+v", action, d)
		}
	}
	for _, c := range []struct{ action, repo string }{{"pull", "hub/library/alpine"}, {"delete", "hub/library/alpine"}, {"push", "team/alpine"}, {"push", "hubble/app"}} {
		if d := check(c.action, c.repo); !d.Allowed {
			t.Errorf("%s %s: %+v", c.action, c.repo, d)
		}
	}
}
