package berth_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestParseGroup(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"corp:registry-admins", true},
		{"corp:/team/ops", true},                             // Keycloak paths
		{"entra:8f2c1f1e-0b7e-4c1a-9a33-3b8a3b0f2a11", true}, // Entra object ids
		{"corp:a:b", true},
		{"registry-admins", false},
		{"Corp:admins", false},
		{"corp:", false},
		{":admins", false},
		{"corp:two words", false},
		{"corp:quo\"te", false},
		{"corp:" + strings.Repeat("g", 300), false},
	} {
		g, err := berth.ParseGroup(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseGroup(%q) = %q, %v; want ok=%v", tc.in, g, err, tc.ok)
			continue
		}
		if err != nil && !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParseGroup(%q): code %s, want invalid", tc.in, berth.ErrorCode(err))
		}
		if err == nil && g.Provider() != strings.SplitN(tc.in, ":", 2)[0] {
			t.Errorf("ParseGroup(%q).Provider() = %q", tc.in, g.Provider())
		}
	}
}

func TestGroupsOf(t *testing.T) {
	got, skipped := berth.GroupsOf("corp", []string{"ops", "dev", "ops", "bad group", ""})
	want := []berth.Group{"corp:dev", "corp:ops"}
	if !slices.Equal(got, want) || skipped != 2 {
		t.Fatalf("GroupsOf = %v, skipped %d; want %v, 2", got, skipped, want)
	}
}

func TestUserName(t *testing.T) {
	taken := map[string]bool{"ada": true, "ada-2": true, "admin": true}
	isTaken := func(s string) bool { return taken[s] }
	for _, tc := range []struct{ claim, want string }{
		{"Ada.Lovelace@corp.example", "ada.lovelace"},
		{"ada", "ada-3"},
		{"grace hopper", "grace-hopper"},
		{"__x__", "x"},
		{"", "user"},
		{"@@@", "user"},
		{"ÄÖ", "user"},
		{"admin", "user-admin"},
		{"anonymous", "user-anonymous"},
		{"0b7e4c1a-9a33-4b8a-9b0f-2a11aaaabbbb", "user-0b7e4c1a-9a33-4b8a-9b0f-2a11aaaabbbb"}, // a UUID is not a name
		{strings.Repeat("x", 100), strings.Repeat("x", 60)},
	} {
		got := berth.UserName(tc.claim, isTaken)
		if got != tc.want {
			t.Errorf("UserName(%q) = %q, want %q", tc.claim, got, tc.want)
		}
		if err := berth.ValidatePrincipalName(got); err != nil {
			t.Errorf("UserName(%q) = %q, not a valid name: %v", tc.claim, got, err)
		}
	}
}

func TestNewIdentityProvider(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	rnd := bytes.NewReader(bytes.Repeat([]byte{7}, 64))
	p, err := berth.NewIdentityProvider(rnd, berth.IdentityProvider{Name: "corp", Issuer: "http://127.0.0.1:9999", ClientID: "berth"}, berth.OutboundPolicy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || p.GroupsClaim != "groups" || p.UsernameClaim != "preferred_username" || !slices.Equal(p.Scopes, berth.DefaultIdPScopes) || !p.Created.Equal(now) {
		t.Fatalf("defaults not filled: %+v", p)
	}
	for name, in := range map[string]berth.IdentityProvider{
		"plain http off loopback": {Name: "corp", Issuer: "http://idp.example.com", ClientID: "x"},
		"bad name":                {Name: "Corp", Issuer: "https://idp.example.com", ClientID: "x"},
		"no client id":            {Name: "corp", Issuer: "https://idp.example.com"},
		"no openid":               {Name: "corp", Issuer: "https://idp.example.com", ClientID: "x", Scopes: []string{"profile"}},
		"bad claim":               {Name: "corp", Issuer: "https://idp.example.com", ClientID: "x", GroupsClaim: "a b"},
		"metadata service":        {Name: "corp", Issuer: "https://169.254.169.254", ClientID: "x"},
	} {
		_, err := berth.NewIdentityProvider(rnd, in, berth.OutboundPolicy{}, now)
		if !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
}

// A person's rights are the union of their own assignments and their
// groups'; a refusal names the groups that would have allowed it.
func TestGroupAssignmentsAddUp(t *testing.T) {
	team := mustScope(t, "team/*")
	groups := []berth.GroupRoleAssignment{
		{Group: "corp:devs", Role: berth.RolePush, Scope: team},
		{Group: "corp:admins", Role: berth.RoleOwner, Scope: berth.RegistryScope},
		{Group: "corp:readers", Role: berth.RolePull, Scope: berth.RegistryScope},
	}
	actor := berth.Actor{ID: "p1", Name: "ada"}
	own := []berth.RoleAssignment{{PrincipalID: "p1", Role: berth.RolePull, Scope: mustScope(t, "other/app")}}
	held := append(own, berth.MemberAssignments(groups, []berth.Group{"corp:devs"}, "p1", "ada")...)
	idx := berth.NewAccessIndex(actor, held)

	d := idx.Decide(berth.ActionContentWrite, "team/app")
	if !d.Allowed || d.Allowing.Group != "corp:devs" {
		t.Fatalf("push through the group: %+v", d)
	}
	if !idx.Decide(berth.ActionContentRead, "other/app").Allowed {
		t.Fatal("own assignment lost")
	}
	d = idx.Decide(berth.ActionContentDelete, "team/app")
	d.NameGroups(berth.GroupsGranting(groups, berth.ActionContentDelete, "team/app"))
	if d.Allowed || d.Reason != berth.CodeRoleMissing || !slices.Equal(d.Groups, []string{"corp:admins"}) {
		t.Fatalf("delete: %+v", d)
	}
	if !strings.Contains(d.Message, "members of corp:admins may") {
		t.Fatalf("message does not name the group: %s", d.Message)
	}
	if e := berth.AsError(d.Err()); e.Detail["granting_groups"] != "corp:admins" {
		t.Fatalf("detail: %v", e.Detail)
	}
	// Not a member of any group: the group assignments count for nothing.
	if berth.NewAccessIndex(actor, berth.MemberAssignments(groups, nil, "p1", "ada")).Allows(berth.ActionContentRead, "team/app") {
		t.Fatal("a non-member holds a group's role")
	}
}

func TestGroupRoleAssignmentValidate(t *testing.T) {
	ok := berth.GroupRoleAssignment{Group: "corp:devs", Role: berth.RolePull, Scope: berth.RegistryScope}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, g := range []berth.GroupRoleAssignment{
		{Group: "devs", Role: berth.RolePull, Scope: berth.RegistryScope},
		{Group: "corp:devs", Role: "root", Scope: berth.RegistryScope},
		{Group: "corp:devs", Role: berth.RolePull},
	} {
		if err := g.Validate(); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%+v: %v, want invalid", g, err)
		}
	}
}

func TestIdentityProviderSameSettings(t *testing.T) {
	p := berth.IdentityProvider{ID: "1", Name: "corp", Issuer: "https://idp.example", ClientID: "berth",
		GroupsClaim: "groups", UsernameClaim: "preferred_username", Scopes: []string{"openid", "groups"}}
	same := p
	same.ID, same.Name, same.Created = "2", "other", time.Unix(1, 0)
	if !p.SameSettings(same) {
		t.Error("an ID, name or creation time changed the settings")
	}
	for name, change := range map[string]func(*berth.IdentityProvider){
		"issuer":         func(q *berth.IdentityProvider) { q.Issuer = "https://other.example" },
		"client id":      func(q *berth.IdentityProvider) { q.ClientID = "x" },
		"groups claim":   func(q *berth.IdentityProvider) { q.GroupsClaim = "roles" },
		"username claim": func(q *berth.IdentityProvider) { q.UsernameClaim = "email" },
		"scopes":         func(q *berth.IdentityProvider) { q.Scopes = []string{"openid"} },
	} {
		q := p
		q.Scopes = slices.Clone(p.Scopes)
		change(&q)
		if p.SameSettings(q) {
			t.Errorf("a changed %s left the settings the same", name)
		}
	}
}
