package storetest

import (
	"testing"

	"github.com/berth-dev/berth"
)

// The RoleStore tests. Where the contract leaves a choice open, the suite
// settles it:
//   - FindRoleAssignments returns an empty result, not an error, when nothing
//     matches, and its Scope filter matches the scope exactly;
//   - an assignment reads back with the Created and CreatedBy it was made with,
//     and with its principal's current name;
//   - the assignments of a deleted principal are not returned (deleting a
//     principal is not blocked by them).

// rolePrincipals creates the two principals the tests assign roles to. The
// first has the smaller ID and the later name, so that an order by name
// instead of by ID shows.
func rolePrincipals(t *testing.T, s berth.MetadataStore) (a, b berth.Principal) {
	t.Helper()
	return createPrincipal(t, s, principalN(1, "zed", 0)), createPrincipal(t, s, principalN(2, "abe", 0))
}

// assigner is the ID the tests' assignments were made by; no principal needs
// to have it.
const assigner = "f0000000-0000-4000-8000-000000000001"

func roleScope(t *testing.T, s string) berth.Scope {
	t.Helper()
	sc, err := berth.ParseScope(s)
	must(t, err)
	return sc
}

func roleAssignment(t *testing.T, p berth.Principal, role berth.Role, sc string, created int) berth.RoleAssignment {
	t.Helper()
	return berth.RoleAssignment{PrincipalID: p.ID, Role: role, Scope: roleScope(t, sc), Created: at(created), CreatedBy: assigner}
}

func createAssignment(t *testing.T, s berth.MetadataStore, a berth.RoleAssignment) {
	t.Helper()
	must(t, s.CreateRoleAssignment(ctx(t), a))
}

// findAssignments returns "PRINCIPAL-NAME ROLE SCOPE" of each assignment
// filter selects, in the store's order.
func findAssignments(t *testing.T, s berth.MetadataStore, filter berth.RoleAssignmentFilter) []string {
	t.Helper()
	as, err := s.FindRoleAssignments(ctx(t), filter)
	must(t, err)
	var out []string
	for _, a := range as {
		out = append(out, a.PrincipalName+" "+string(a.Role)+" "+a.Scope.String())
	}
	return out
}

var roleTests = []test{
	{"CreateAndFind", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		want := []berth.RoleAssignment{
			roleAssignment(t, zed, berth.RoleOwner, "registry", 0),
			roleAssignment(t, zed, berth.RolePush, "team/*", 1),
			roleAssignment(t, zed, berth.RolePull, "team/app", 2),
		}
		want[0].CreatedBy = "" // berth itself, as for the first admin
		for _, a := range want {
			createAssignment(t, s, a)
		}
		createAssignment(t, s, roleAssignment(t, abe, berth.RolePull, "team/app", 3))
		got, err := s.FindRoleAssignments(ctx(t), berth.RoleAssignmentFilter{PrincipalID: zed.ID})
		must(t, err)
		if len(got) != len(want) {
			t.Fatalf("FindRoleAssignments = %v, want %v", got, want)
		}
		// Ordered by scope text: "registry" < "team/*" < "team/app".
		for i := range want {
			g, w := got[i], want[i]
			if g.PrincipalID != w.PrincipalID || g.PrincipalName != "zed" || g.Role != w.Role || g.Scope != w.Scope || g.CreatedBy != w.CreatedBy {
				t.Errorf("assignment %d = %+v, want %+v", i, g, w)
			}
			if g.Scope.Kind() != w.Scope.Kind() {
				t.Errorf("assignment %d: scope kind %s, want %s", i, g.Scope.Kind(), w.Scope.Kind())
			}
			wantTime(t, "Created", g.Created, w.Created)
		}
	}},
	{"DuplicateIsConflict", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		first := roleAssignment(t, zed, berth.RolePush, "team/*", 0)
		createAssignment(t, s, first)
		again := first
		again.Created, again.CreatedBy = at(60), abe.ID
		wantCode(t, "CreateRoleAssignment of a held role", s.CreateRoleAssignment(ctx(t), again), berth.CodeConflict)
		got, err := s.FindRoleAssignments(ctx(t), berth.RoleAssignmentFilter{PrincipalID: zed.ID})
		must(t, err)
		if len(got) != 1 || got[0].CreatedBy != assigner {
			t.Fatalf("after the refused create: %+v, want the first assignment alone", got)
		}
		wantTime(t, "Created after the refused create", got[0].Created, at(0))
	}},
	{"SameRoleElsewhereIsNoConflict", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/*", 0))
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/app", 0)) // another scope
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePull, "team/*", 0))   // another role
		createAssignment(t, s, roleAssignment(t, abe, berth.RolePush, "team/*", 0))   // another principal
		wantStrings(t, "FindRoleAssignments", findAssignments(t, s, berth.RoleAssignmentFilter{}),
			[]string{"zed pull team/*", "zed push team/*", "zed push team/app", "abe push team/*"})
	}},
	{"FindFilters", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		for _, a := range []berth.RoleAssignment{
			roleAssignment(t, abe, berth.RolePull, "team/*", 0),
			roleAssignment(t, zed, berth.RoleOwner, "registry", 0),
			roleAssignment(t, zed, berth.RolePush, "team/app", 0),
			roleAssignment(t, zed, berth.RoleDelete, "team/*", 0),
			roleAssignment(t, zed, berth.RolePull, "team/*", 0),
			roleAssignment(t, abe, berth.RoleCatalog, "registry", 0),
			roleAssignment(t, abe, berth.RolePull, "team", 0),
		} {
			createAssignment(t, s, a)
		}
		tests := []struct {
			name   string
			filter berth.RoleAssignmentFilter
			want   []string
		}{
			// Principal id, then scope text, then role name, in byte order.
			{"all", berth.RoleAssignmentFilter{}, []string{
				"zed owner registry", "zed delete team/*", "zed pull team/*", "zed push team/app",
				"abe catalog registry", "abe pull team", "abe pull team/*",
			}},
			{"principal", berth.RoleAssignmentFilter{PrincipalID: abe.ID}, []string{
				"abe catalog registry", "abe pull team", "abe pull team/*",
			}},
			// Exactly the scope: not the repositories a namespace covers, not
			// the namespace a repository is in, not the repository named like
			// the namespace.
			{"namespace scope", berth.RoleAssignmentFilter{Scope: roleScope(t, "team/*")}, []string{
				"zed delete team/*", "zed pull team/*", "abe pull team/*",
			}},
			{"repository scope", berth.RoleAssignmentFilter{Scope: roleScope(t, "team/app")}, []string{"zed push team/app"}},
			{"registry scope", berth.RoleAssignmentFilter{Scope: berth.RegistryScope}, []string{"zed owner registry", "abe catalog registry"}},
			{"both", berth.RoleAssignmentFilter{PrincipalID: zed.ID, Scope: roleScope(t, "team/*")}, []string{
				"zed delete team/*", "zed pull team/*",
			}},
			{"unknown principal", berth.RoleAssignmentFilter{PrincipalID: assigner}, nil},
			{"unheld scope", berth.RoleAssignmentFilter{Scope: roleScope(t, "other/*")}, nil},
		}
		for _, tc := range tests {
			got := findAssignments(t, s, tc.filter)
			wantStrings(t, tc.name, got, tc.want)
		}
	}},
	{"FindInEmptyStore", func(t *testing.T, s berth.MetadataStore) {
		got, err := s.FindRoleAssignments(ctx(t), berth.RoleAssignmentFilter{})
		must(t, err)
		if len(got) != 0 {
			t.Errorf("FindRoleAssignments of an empty store = %v", got)
		}
	}},
	{"Delete", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/*", 0))
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePull, "team/*", 0))
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/app", 0))
		createAssignment(t, s, roleAssignment(t, abe, berth.RolePush, "team/*", 0))
		must(t, s.DeleteRoleAssignment(ctx(t), zed.ID, berth.RolePush, roleScope(t, "team/*")))
		wantStrings(t, "after DeleteRoleAssignment", findAssignments(t, s, berth.RoleAssignmentFilter{}),
			[]string{"zed pull team/*", "zed push team/app", "abe push team/*"})
		wantCode(t, "DeleteRoleAssignment twice",
			s.DeleteRoleAssignment(ctx(t), zed.ID, berth.RolePush, roleScope(t, "team/*")), berth.CodeNotFound)
		// Re-creating a revoked assignment works.
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/*", 5))
	}},
	{"CreateForUnknownPrincipalIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		zed, _ := rolePrincipals(t, s)
		ghost := principalN(9, "ghost", 0) // never created
		wantCode(t, "CreateRoleAssignment for an unknown principal",
			s.CreateRoleAssignment(ctx(t), roleAssignment(t, ghost, berth.RolePull, "team/*", 0)), berth.CodeNotFound)
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePull, "team/*", 0))
		wantStrings(t, "after the refused create", findAssignments(t, s, berth.RoleAssignmentFilter{}), []string{"zed pull team/*"})
	}},
	{"DeletedPrincipalHoldsNothing", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		createAssignment(t, s, roleAssignment(t, zed, berth.RoleOwner, "registry", 0))
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/*", 0))
		createAssignment(t, s, roleAssignment(t, abe, berth.RolePush, "team/*", 0))
		must(t, s.DeletePrincipal(ctx(t), zed.ID))
		wantStrings(t, "after DeletePrincipal", findAssignments(t, s, berth.RoleAssignmentFilter{}), []string{"abe push team/*"})
		wantStrings(t, "the deleted principal's", findAssignments(t, s, berth.RoleAssignmentFilter{PrincipalID: zed.ID}), nil)
		wantCode(t, "CreateRoleAssignment for the deleted principal",
			s.CreateRoleAssignment(ctx(t), roleAssignment(t, zed, berth.RolePull, "team/*", 1)), berth.CodeNotFound)
	}},
	{"DeleteUnknownIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		zed, abe := rolePrincipals(t, s)
		wantCode(t, "DeleteRoleAssignment in an empty store",
			s.DeleteRoleAssignment(ctx(t), zed.ID, berth.RolePull, roleScope(t, "team/*")), berth.CodeNotFound)
		createAssignment(t, s, roleAssignment(t, zed, berth.RolePush, "team/*", 0))
		for _, tc := range []struct {
			principal string
			role      berth.Role
			scope     string
		}{
			{abe.ID, berth.RolePush, "team/*"},   // another principal
			{zed.ID, berth.RolePull, "team/*"},   // a role push includes, but not held
			{zed.ID, berth.RolePush, "team/app"}, // a repository the namespace covers
			{zed.ID, berth.RolePush, "registry"},
		} {
			wantCode(t, "DeleteRoleAssignment of an unheld assignment",
				s.DeleteRoleAssignment(ctx(t), tc.principal, tc.role, roleScope(t, tc.scope)), berth.CodeNotFound)
		}
		wantStrings(t, "after refused deletes", findAssignments(t, s, berth.RoleAssignmentFilter{}), []string{"zed push team/*"})
	}},
}
