package berth_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// roleActions is the table of issue 4, written out here rather than read from
// the code, so that a change to a role's actions fails this test.
var roleActions = map[berth.Role][]berth.Action{
	berth.RolePull:    {"content:read", "metadata:read"},
	berth.RolePush:    {"content:read", "metadata:read", "content:write", "metadata:write"},
	berth.RoleDelete:  {"content:delete"},
	berth.RoleCatalog: {"catalog:list"},
	berth.RoleOwner:   {"content:read", "metadata:read", "content:write", "metadata:write", "content:delete", "catalog:list", "role:assign"},
}

func TestActions(t *testing.T) {
	want := []berth.Action{"content:read", "metadata:read", "content:write", "metadata:write", "content:delete", "catalog:list", "role:assign"}
	if !slices.Equal(berth.Actions, want) {
		t.Fatalf("Actions = %q, want %q", berth.Actions, want)
	}
	for _, a := range want {
		got, err := berth.ParseAction(string(a))
		if err != nil || got != a {
			t.Errorf("ParseAction(%q) = %q, %v", a, got, err)
		}
	}
	for _, s := range []string{"", "pull", "content", "content:READ", "*", "content:read "} {
		_, err := berth.ParseAction(s)
		wantRoleCode(t, "ParseAction("+s+")", err, berth.CodeInvalid)
		if berth.Action(s).Valid() {
			t.Errorf("Action(%q).Valid() = true", s)
		}
	}
}

func TestRoleActions(t *testing.T) {
	if want := []berth.Role{"pull", "push", "delete", "catalog", "owner"}; !slices.Equal(berth.Roles, want) {
		t.Fatalf("Roles = %q, want %q", berth.Roles, want)
	}
	for _, r := range berth.Roles {
		if got := r.Actions(); !slices.Equal(got, roleActions[r]) {
			t.Errorf("%s.Actions() = %q, want %q", r, got, roleActions[r])
		}
		for _, a := range berth.Actions {
			if got, want := r.Allows(a), slices.Contains(roleActions[r], a); got != want {
				t.Errorf("%s.Allows(%s) = %v, want %v", r, a, got, want)
			}
		}
		got, err := berth.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "admin", "Pull", "read", "pull,push"} {
		_, err := berth.ParseRole(s)
		wantRoleCode(t, "ParseRole("+s+")", err, berth.CodeInvalid)
		if berth.Role(s).Actions() != nil || berth.Role(s).Allows(berth.ActionContentRead) {
			t.Errorf("unknown role %q has actions", s)
		}
	}
}

func TestParseScope(t *testing.T) {
	long := strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127) // 255
	tests := []struct {
		in   string
		kind berth.ScopeKind // "" means invalid
		name string
	}{
		{"registry", berth.ScopeRegistry, ""},
		{"team/*", berth.ScopeNamespace, "team"},
		{"team/x/*", berth.ScopeNamespace, "team/x"},
		{"a.b_c-d/*", berth.ScopeNamespace, "a.b_c-d"},
		{"team/app", berth.ScopeRepository, "team/app"},
		{"team", berth.ScopeRepository, "team"},
		{"team/x/app", berth.ScopeRepository, "team/x/app"},
		{long, berth.ScopeRepository, long},
		{long[:253] + "/*", berth.ScopeNamespace, long[:253]},

		{"", "", ""},
		{"*", "", ""},
		{"/*", "", ""},
		{"team*", "", ""},
		{"team/**", "", ""},
		{"team/*/app", "", ""},
		{"*/app", "", ""},
		{"team/x*", "", ""},
		{"team/*/*", "", ""},
		{"Team/app", "", ""},
		{"team/", "", ""},
		{"/team", "", ""},
		{"team//app", "", ""},
		{"team app", "", ""},
		{"Registry", "", ""},
		{"registry/", "", ""},
		{long + "/*", "", ""},
		{long[:254] + "/*", "", ""}, // no room for a repository name
		{long + "c", "", ""},
	}
	for _, tc := range tests {
		s, err := berth.ParseScope(tc.in)
		if tc.kind == "" {
			wantRoleCode(t, "ParseScope("+tc.in+")", err, berth.CodeInvalid)
			if e := berth.AsError(err); e == nil || e.Hint == "" || e.Detail["scope"] == nil {
				t.Errorf("ParseScope(%q): error %#v lacks a hint or the scope detail", tc.in, e)
			}
			if !s.IsZero() {
				t.Errorf("ParseScope(%q) returned %v with its error", tc.in, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tc.in, err)
			continue
		}
		if s.Kind() != tc.kind || s.Name() != tc.name || s.IsZero() {
			t.Errorf("ParseScope(%q) = %s %q, want %s %q", tc.in, s.Kind(), s.Name(), tc.kind, tc.name)
		}
		if s.String() != tc.in {
			t.Errorf("ParseScope(%q).String() = %q", tc.in, s.String())
		}
	}
	if berth.RegistryScope != mustScope(t, "registry") {
		t.Error("RegistryScope differs from ParseScope(registry)")
	}
}

func TestScopeText(t *testing.T) {
	type doc struct {
		Scope berth.Scope `json:"scope"`
	}
	for _, s := range []string{"registry", "team/*", "team/app"} {
		b, err := json.Marshal(doc{mustScope(t, s)})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"scope":"` + s + `"}`; string(b) != want {
			t.Errorf("marshal %s = %s, want %s", s, b, want)
		}
		var back doc
		if err := json.Unmarshal(b, &back); err != nil || back.Scope != mustScope(t, s) {
			t.Errorf("unmarshal %s = %v, %v", b, back.Scope, err)
		}
	}
	var d doc
	err := json.Unmarshal([]byte(`{"scope":"team/*/x"}`), &d)
	wantRoleCode(t, "unmarshal an invalid scope", err, berth.CodeInvalid)
}

func TestRepositoryScope(t *testing.T) {
	s, err := berth.RepositoryScope("team/app")
	if err != nil || s != mustScope(t, "team/app") {
		t.Errorf("RepositoryScope(team/app) = %v, %v", s, err)
	}
	for _, in := range []string{"registry", "team/*", "", "Team"} {
		_, err := berth.RepositoryScope(in)
		wantRoleCode(t, "RepositoryScope("+in+")", err, berth.CodeInvalid)
	}
}

func TestNamespaceOf(t *testing.T) {
	for repo, want := range map[string]string{"team/app": "team/*", "team/x/app": "team/x/*", "app": ""} {
		got := berth.NamespaceOf(repo)
		if want == "" {
			if !got.IsZero() {
				t.Errorf("NamespaceOf(%q) = %v, want the zero scope", repo, got)
			}
			continue
		}
		if got != mustScope(t, want) {
			t.Errorf("NamespaceOf(%q) = %v, want %s", repo, got, want)
		}
	}
}

// coverRepos are the repositories the cover tests ask about; "" is the
// registry itself.
var coverRepos = []string{"", "team", "teamx", "teamx/app", "team-x/app", "team/app", "team/app2", "team/x", "team/x/app", "team/x/y/z", "other/app", "app"}

func TestScopeCovers(t *testing.T) {
	tests := []struct {
		scope  string
		covers []string
	}{
		{"registry", coverRepos},
		// Not "team" itself, not "teamx" nor "team-x/…", not the registry.
		{"team/*", []string{"team/app", "team/app2", "team/x", "team/x/app", "team/x/y/z"}},
		{"team/x/*", []string{"team/x/app", "team/x/y/z"}},
		{"team/app", []string{"team/app"}},
		{"team", []string{"team"}},
		{"app", []string{"app"}},
	}
	for _, tc := range tests {
		s := mustScope(t, tc.scope)
		for _, repo := range coverRepos {
			if got, want := s.Covers(repo), slices.Contains(tc.covers, repo); got != want {
				t.Errorf("%s.Covers(%q) = %v, want %v", tc.scope, repo, got, want)
			}
		}
	}
	if (berth.Scope{}).Covers("team/app") || (berth.Scope{}).Covers("") {
		t.Error("the zero scope covers something")
	}
}

func TestScopeContains(t *testing.T) {
	scopes := []string{"registry", "team/*", "team/x/*", "team/app", "team/x/app", "team", "teamx/*", "teamx", "other/app"}
	tests := []struct {
		outer    string
		contains []string
	}{
		{"registry", scopes},
		{"team/*", []string{"team/*", "team/x/*", "team/app", "team/x/app"}},
		{"team/x/*", []string{"team/x/*", "team/x/app"}},
		{"team/app", []string{"team/app"}},
		{"team", []string{"team"}},
		{"teamx/*", []string{"teamx/*"}},
	}
	for _, tc := range tests {
		outer := mustScope(t, tc.outer)
		for _, in := range scopes {
			if got, want := outer.Contains(mustScope(t, in)), slices.Contains(tc.contains, in); got != want {
				t.Errorf("%s.Contains(%s) = %v, want %v", tc.outer, in, got, want)
			}
		}
		if outer.Contains(berth.Scope{}) || (berth.Scope{}).Contains(outer) {
			t.Errorf("%s and the zero scope contain one another", tc.outer)
		}
	}
}

func TestRoleAssignmentValidate(t *testing.T) {
	valid := berth.RoleAssignment{PrincipalID: "p-1", PrincipalName: "ci-web", Role: berth.RolePush, Scope: mustScope(t, "team/*"), Created: assignedAt}
	if err := valid.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", valid, err)
	}
	for _, r := range berth.Roles {
		a := valid
		a.PrincipalName, a.Role = berth.AnonymousName, r
		err := a.Validate()
		if r == berth.RolePull {
			if err != nil {
				t.Errorf("anonymous pull: %v", err)
			}
			continue
		}
		wantRoleCode(t, "anonymous "+string(r), err, berth.CodeInvalid)
		if e := berth.AsError(err); e == nil || strings.Contains(e.Hint, "--principal anonymous") {
			t.Errorf("anonymous %s: the hint %q suggests the anonymous principal again", r, e.Hint)
		}
	}
	broken := []func(*berth.RoleAssignment){
		func(a *berth.RoleAssignment) { a.PrincipalID = "" },
		func(a *berth.RoleAssignment) { a.Role = "" },
		func(a *berth.RoleAssignment) { a.Role = "admin" },
		func(a *berth.RoleAssignment) { a.Scope = berth.Scope{} },
	}
	for i, f := range broken {
		a := valid
		f(&a)
		wantRoleCode(t, "broken assignment "+string(rune('0'+i)), a.Validate(), berth.CodeInvalid)
	}
}

func mustScope(t testing.TB, s string) berth.Scope {
	t.Helper()
	scope, err := berth.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return scope
}

func wantRoleCode(t testing.TB, what string, err error, code berth.Code) {
	t.Helper()
	if got := berth.ErrorCode(err); got != code {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

// assignedAt is when the tests' assignments were made.
var assignedAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
