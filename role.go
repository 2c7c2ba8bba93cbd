package berth

import (
	"context"
	"strings"
	"time"
)

// Action is one thing a principal may do. Actions are granted only through
// roles; a request names exactly one action (a manifest PUT by tag needs two:
// content:write for the manifest and metadata:write for the tag).
type Action string

const (
	// ActionContentRead reads blobs and manifests: GET and HEAD of
	// /v2/NAME/blobs/DIGEST and /v2/NAME/manifests/REF.
	ActionContentRead Action = "content:read"
	// ActionMetadataRead reads what describes a repository's content: its tag
	// list and its referrers, and whether it exists.
	ActionMetadataRead Action = "metadata:read"
	// ActionContentWrite uploads and mounts blobs and puts manifests.
	ActionContentWrite Action = "content:write"
	// ActionMetadataWrite creates and moves tags.
	ActionMetadataWrite Action = "metadata:write"
	// ActionContentDelete deletes blobs, manifests and tags.
	ActionContentDelete Action = "content:delete"
	// ActionCatalogList lists repositories (/v2/_catalog). On the registry scope
	// it lists every repository; on a narrower scope, the repositories in it.
	ActionCatalogList Action = "catalog:list"
	// ActionRoleAssign assigns and revokes roles within a scope.
	ActionRoleAssign Action = "role:assign"
)

// Actions lists every action, in the order messages and documentation use.
var Actions = []Action{
	ActionContentRead,
	ActionMetadataRead,
	ActionContentWrite,
	ActionMetadataWrite,
	ActionContentDelete,
	ActionCatalogList,
	ActionRoleAssign,
}

// actionSet is a set of actions, one bit per entry of Actions.
type actionSet uint8

func (a Action) bit() actionSet {
	for i, b := range Actions {
		if a == b {
			return 1 << i
		}
	}
	return 0
}

func setOf(actions ...Action) actionSet {
	var s actionSet
	for _, a := range actions {
		s |= a.bit()
	}
	return s
}

// Valid reports whether a is one of Actions.
func (a Action) Valid() bool { return a.bit() != 0 }

// ParseAction returns the action named s, or invalid.
func ParseAction(s string) (Action, error) {
	if a := Action(s); a.Valid() {
		return a, nil
	}
	return "", Errorf(CodeInvalid, "%q is not an action", Truncate(s, 80)).
		WithHint("use one of: %s", joinActions(Actions)).
		WithDetail("action", Truncate(s, 80))
}

// Role is a named set of actions. Only the built-in roles exist.
type Role string

const (
	// RolePull reads: content:read and metadata:read.
	RolePull Role = "pull"
	// RolePush is pull plus content:write and metadata:write: a push always
	// needs to read what it pushed (Docker clients check before uploading).
	RolePush Role = "push"
	// RoleDelete is content:delete alone.
	RoleDelete Role = "delete"
	// RoleCatalog is catalog:list alone.
	RoleCatalog Role = "catalog"
	// RoleOwner is every action on its scope, role:assign included.
	RoleOwner Role = "owner"
)

// Roles lists the built-in roles, narrowest first: the order in which a refusal
// looks for the role to suggest.
var Roles = []Role{RolePull, RolePush, RoleDelete, RoleCatalog, RoleOwner}

var roleActions = map[Role]actionSet{
	RolePull:    setOf(ActionContentRead, ActionMetadataRead),
	RolePush:    setOf(ActionContentRead, ActionMetadataRead, ActionContentWrite, ActionMetadataWrite),
	RoleDelete:  setOf(ActionContentDelete),
	RoleCatalog: setOf(ActionCatalogList),
	RoleOwner:   setOf(Actions...),
}

func (r Role) actions() actionSet { return roleActions[r] }

// Valid reports whether r is a built-in role.
func (r Role) Valid() bool { return r.actions() != 0 }

// Actions returns the role's actions in the order of Actions; none for an
// unknown role.
func (r Role) Actions() []Action {
	var out []Action
	set := r.actions()
	for _, a := range Actions {
		if set&a.bit() != 0 {
			out = append(out, a)
		}
	}
	return out
}

// Allows reports whether the role includes action a.
func (r Role) Allows(a Action) bool { return a.bit() != 0 && r.actions()&a.bit() != 0 }

// ParseRole returns the built-in role named s, or invalid.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", Errorf(CodeInvalid, "%q is not a role", Truncate(s, 80)).
		WithHint("use one of: %s", strings.Join(names, ", ")).
		WithDetail("role", Truncate(s, 80))
}

// narrowestRole returns the first role of Roles that allows a.
func narrowestRole(a Action) Role {
	for _, r := range Roles {
		if r.Allows(a) {
			return r
		}
	}
	return ""
}

// ScopeKind says what a Scope covers.
type ScopeKind string

const (
	// ScopeRegistry covers every repository and the registry itself.
	ScopeRegistry ScopeKind = "registry"
	// ScopeNamespace covers every repository under a name prefix.
	ScopeNamespace ScopeKind = "namespace"
	// ScopeRepository covers one repository.
	ScopeRepository ScopeKind = "repository"
)

// Scope is where a role assignment applies. Its text form, which ParseScope reads
// and String writes, is one of:
//
//   - "registry": every repository, and the registry-wide actions (the full
//     catalog);
//   - "NS/*", a namespace: every repository whose name starts with "NS/", at any
//     depth ("team/*" covers "team/x" and "team/x/y"). It does not cover "teamx",
//     nor the repository "NS" itself: a repository named like the namespace is
//     a different repository and needs its own assignment ("team/*" grants
//     nothing on "team");
//   - "NAME", one repository.
//
// The word "registry" always means the registry scope, so a top-level
// repository named "registry" can be reached only through that scope.
//
// The zero Scope is no scope: ParseScope never returns it and it covers
// nothing.
type Scope struct {
	kind ScopeKind
	name string // the namespace without "/*", or the repository; "" for the registry
}

// RegistryScope is the scope of the whole registry.
var RegistryScope = Scope{kind: ScopeRegistry}

// ParseScope returns the scope s names, or invalid with the facts and the
// accepted forms. Namespaces and repositories follow the repository-name
// grammar (ValidateRepositoryName).
func ParseScope(s string) (Scope, error) {
	switch {
	case s == "registry":
		return RegistryScope, nil
	case s == "":
		return Scope{}, scopeInvalid(s, "it is empty")
	}
	if ns, ok := strings.CutSuffix(s, "/*"); ok {
		if strings.Contains(ns, "*") {
			return Scope{}, scopeInvalid(s, "'*' may appear only once, as the last path component")
		}
		// A repository in the namespace is at least NS + "/x".
		if len(ns)+2 > MaxRepositoryNameLength {
			return Scope{}, scopeInvalid(s, "the namespace leaves no room for a repository name within 255 characters")
		}
		if ValidateRepositoryName(ns) != nil {
			return Scope{}, scopeInvalid(s, "its namespace does not follow the repository-name grammar")
		}
		return Scope{kind: ScopeNamespace, name: ns}, nil
	}
	if strings.Contains(s, "*") {
		return Scope{}, scopeInvalid(s, "'*' may appear only as a whole last path component, as in team/*")
	}
	if err := ValidateRepositoryName(s); err != nil {
		return Scope{}, scopeInvalid(s, "it does not follow the repository-name grammar")
	}
	return Scope{kind: ScopeRepository, name: s}, nil
}

func scopeInvalid(s, why string) *Error {
	return Errorf(CodeInvalid, "scope %q is invalid: %s", Truncate(s, 80), why).
		WithHint(`use "registry", a namespace such as "team/*", or a repository such as "team/app" (lower-case letters and digits, path components separated by '/')`).
		WithDetail("scope", Truncate(s, 80))
}

// NamespaceOf returns the scope of the namespace that directly holds repo
// ("team/*" for "team/web/api" is "team/web/*"), or the zero Scope for a
// top-level repository.
func NamespaceOf(repo string) Scope {
	i := strings.LastIndexByte(repo, '/')
	if i <= 0 {
		return Scope{}
	}
	return Scope{kind: ScopeNamespace, name: repo[:i]}
}

// RepositoryScope returns the scope of the one repository repo, or invalid.
func RepositoryScope(repo string) (Scope, error) {
	if repo == "registry" || strings.HasSuffix(repo, "/*") {
		return Scope{}, scopeInvalid(repo, "it is not a repository name")
	}
	return ParseScope(repo)
}

// Kind returns what the scope covers; "" for the zero Scope.
func (s Scope) Kind() ScopeKind { return s.kind }

// Name returns the namespace (without "/*") or the repository the scope names;
// "" for the registry scope.
func (s Scope) Name() string { return s.name }

// IsZero reports whether s is the zero Scope.
func (s Scope) IsZero() bool { return s.kind == "" }

// String returns the text form ParseScope reads.
func (s Scope) String() string {
	switch s.kind {
	case ScopeRegistry:
		return "registry"
	case ScopeNamespace:
		return s.name + "/*"
	}
	return s.name
}

// MarshalText writes the text form.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the text form with ParseScope.
func (s *Scope) UnmarshalText(b []byte) error {
	parsed, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}

// Covers reports whether an assignment on s applies to repo. repo "" stands for
// the registry itself (a registry-wide action such as listing the whole
// catalog), which only the registry scope covers.
func (s Scope) Covers(repo string) bool {
	switch s.kind {
	case ScopeRegistry:
		return true
	case ScopeNamespace:
		return len(repo) > len(s.name)+1 && repo[len(s.name)] == '/' && repo[:len(s.name)] == s.name
	case ScopeRepository:
		return repo == s.name
	}
	return false
}

// Contains reports whether every repository inner covers is covered by s, and
// inner is not wider than s: the registry contains every scope; "team/*"
// contains itself, "team/x/*" and "team/x"; a repository contains only itself.
// An owner may assign roles on the scopes its scope contains.
func (s Scope) Contains(inner Scope) bool {
	switch {
	case s.IsZero() || inner.IsZero():
		return false
	case s.kind == ScopeRegistry:
		return true
	case inner.kind == ScopeRegistry:
		return false
	case s == inner:
		return true
	}
	// s is a namespace or a repository, inner a namespace or a repository other
	// than s: only a namespace holds anything besides itself.
	return s.kind == ScopeNamespace && s.Covers(inner.name)
}

// AnonymousName is the name of the principal that unauthenticated requests act
// as. It may hold only the pull role: pull on a scope makes that scope publicly
// readable and nothing else.
const AnonymousName = "anonymous"

// RoleAssignment gives a principal a role on a scope. Assignments add up: a
// principal may do what any of its assignments allows.
type RoleAssignment struct {
	PrincipalID string `json:"principal_id"`
	// PrincipalName is the principal's current name, filled in by stores when
	// they read an assignment and by callers for messages; it identifies
	// nothing (PrincipalID does).
	PrincipalName string `json:"principal_name,omitempty"`
	// Group, when set, is the group the principal holds the role through
	// (GroupRoleAssignment.For); stores never set it.
	Group   Group     `json:"group,omitempty"`
	Role    Role      `json:"role"`
	Scope   Scope     `json:"scope"`
	Created time.Time `json:"created_at"`
	// CreatedBy is the id of the principal that made the assignment, or ""
	// when berth made it itself (the first admin at first start).
	CreatedBy string `json:"created_by,omitempty"`
}

// Validate returns invalid unless a names a principal, a built-in role and a
// scope, and refuses any role but pull for the anonymous principal (by
// PrincipalName, which the caller must set for that check).
func (a RoleAssignment) Validate() error {
	switch {
	case a.PrincipalID == "":
		return Errorf(CodeInvalid, "the role assignment names no principal")
	case !a.Role.Valid():
		_, err := ParseRole(string(a.Role))
		return err
	case a.Scope.IsZero():
		return Errorf(CodeInvalid, "the role assignment names no scope").
			WithHint(`use "registry", a namespace such as "team/*", or a repository such as "team/app"`)
	case a.PrincipalName == AnonymousName && a.Role != RolePull:
		return Errorf(CodeInvalid, "the anonymous principal may hold only the pull role, not %s: anonymous requests carry no credentials, so %s on %s would give it to everyone", a.Role, a.Role, a.Scope).
			WithHint("berth role assign --principal NAME --role %s --scope %s, naming a principal that authenticates", a.Role, a.Scope).
			WithDetail("role", string(a.Role))
	}
	return nil
}

// RoleAssignmentFilter selects role assignments; a zero field matches all.
type RoleAssignmentFilter struct {
	PrincipalID string
	// Scope matches assignments on exactly this scope, not the scopes it
	// contains or is contained in.
	Scope Scope
}

// RoleStore persists role assignments. It decides nothing: Validate and
// CanAssign are for callers, before they write.
type RoleStore interface {
	// CreateRoleAssignment records a. It returns not_found when no principal
	// has a.PrincipalID, and conflict when that principal already holds a.Role
	// on a.Scope (the stored one is kept).
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	// DeleteRoleAssignment removes the principal's role on exactly scope, or
	// returns not_found.
	DeleteRoleAssignment(ctx context.Context, principalID string, role Role, scope Scope) error
	// FindRoleAssignments returns the assignments filter selects, with
	// PrincipalName filled in, ordered by principal id, then scope text, then
	// role name (byte order). A deleted principal holds nothing: its leftover
	// assignments, if the store keeps any, are not returned.
	FindRoleAssignments(ctx context.Context, filter RoleAssignmentFilter) ([]RoleAssignment, error)
}

func joinActions(as []Action) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}
