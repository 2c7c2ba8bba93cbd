package berth

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Actor is who an access decision is about: a principal's ID, which assignments
// refer to, and its name, which messages and hints show. A Principal p acts as
// Actor{ID: p.ID, Name: p.Name}; unauthenticated requests act as the principal
// named AnonymousName.
type Actor struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (a Actor) display() string {
	if a.Name != "" {
		return a.Name
	}
	return a.ID
}

func (a Actor) anonymous() bool { return a.Name == AnonymousName }

// Decision is the answer to "may this actor do this action on this repository",
// with what explains it. Its JSON form is what berth access check -o json and
// GET /api/v1/access/check show: "allowed", "reason" and "hint" among others.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Reason is "" when allowed. A denial is role_missing; for the anonymous
	// actor it is credentials_missing, since what fixes it is to authenticate
	// (and a transport answers 401, so that clients retry with credentials);
	// an unknown action is invalid.
	Reason     Code   `json:"reason,omitempty"`
	Actor      Actor  `json:"principal"`
	Action     Action `json:"action"`
	Repository string `json:"repository,omitempty"` // "" for the registry itself
	// Scope is the scope a CanAssign decision is about; zero for Decide.
	Scope Scope `json:"scope,omitzero"`
	// Allowing is the assignment that allowed the action: the one on the
	// narrowest scope (a repository before its namespaces, a deeper namespace
	// before a shallower one, the registry last), the narrowest role first.
	Allowing *RoleAssignment `json:"allowing,omitempty"`
	// Missing, on a denial, is the narrowest role that would allow the action,
	// and MissingScope the scope the hint suggests for it: the repository
	// itself (least privilege; a namespace is a wider grant an operator may
	// choose instead), the registry for a registry-wide action, the scope
	// itself for CanAssign.
	Missing      Role  `json:"missing_role,omitempty"`
	MissingScope Scope `json:"missing_scope,omitzero"`
	// Held, on a denial, is every assignment the actor holds, in the order of
	// AccessIndex.Assignments. It shares the index's memory: read it, never
	// modify it.
	Held []RoleAssignment `json:"held,omitempty"`
	// Groups, on a denial, are the groups whose members may do what was
	// refused (Decision.NameGroups).
	Groups []string `json:"granting_groups,omitempty"`
	// Message states the facts of a denial: the principal, the action, the
	// repository, the roles it holds and where, the roles that would allow it.
	Message string `json:"message,omitempty"`
	// Hint is the command that fixes a denial.
	Hint string `json:"hint,omitempty"`
}

// Err returns nil when d allows, and otherwise the *Error a transport renders,
// with detail "principal", "action", "repository" (or "scope") and
// "missing_role".
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	e := &Error{Code: d.Reason, Message: d.Message, Hint: d.Hint}
	e.WithDetail("principal", d.Actor.display()).WithDetail("action", string(d.Action))
	if !d.Scope.IsZero() {
		e.WithDetail("scope", d.Scope.String())
	} else {
		e.WithDetail("repository", d.Repository)
	}
	if len(d.Groups) > 0 {
		e.WithDetail("granting_groups", strings.Join(d.Groups, ","))
	}
	if d.Missing != "" {
		e.WithDetail("missing_role", string(d.Missing))
	}
	return e
}

// Decide answers whether actor may do action on repo (repo "" is the registry
// itself: catalog:list there lists every repository). Only assignments whose
// PrincipalID is actor.ID count, so callers may pass more. Access is denied by
// default and assignments add up; the anonymous actor counts its pull
// assignments only.
//
// Decide builds an AccessIndex and asks it; a caller deciding more than once for
// the same actor keeps the index instead.
func Decide(assignments []RoleAssignment, actor Actor, action Action, repo string) Decision {
	return NewAccessIndex(actor, assignments).Decide(action, repo)
}

// CanAssign answers whether actor may assign or revoke roles on scope: only an
// owner of that scope or of a scope containing it (see Scope.Contains), the
// registry included, may.
func CanAssign(assignments []RoleAssignment, actor Actor, scope Scope) Decision {
	return NewAccessIndex(actor, assignments).CanAssign(scope)
}

// AccessIndex is one actor's assignments arranged for deciding in constant time
// in the number of assignments: a few map lookups, one per '/' in the
// repository name, and no allocation when the answer is yes. It is immutable and
// safe for concurrent use; when assignments change, build a new one.
type AccessIndex struct {
	actor      Actor
	held       []RoleAssignment // the assignments that count, sorted for messages
	registry   []grant
	namespaces map[string][]grant
	repos      map[string][]grant
	union      actionSet // every action held anywhere
}

type grant struct {
	actions actionSet
	a       *RoleAssignment
}

// NewAccessIndex indexes actor's assignments. Assignments of other principals,
// of unknown roles, on the zero scope and, for the anonymous actor, of any role
// but pull are left out.
func NewAccessIndex(actor Actor, assignments []RoleAssignment) *AccessIndex {
	idx := &AccessIndex{actor: actor}
	for _, a := range assignments {
		if a.PrincipalID != actor.ID || !a.Role.Valid() || a.Scope.IsZero() {
			continue
		}
		if actor.anonymous() && a.Role != RolePull {
			continue
		}
		idx.held = append(idx.held, a)
	}
	slices.SortFunc(idx.held, compareAssignments)
	for i := range idx.held {
		a := &idx.held[i]
		g := grant{actions: a.Role.actions(), a: a}
		idx.union |= g.actions
		switch a.Scope.kind {
		case ScopeRegistry:
			idx.registry = append(idx.registry, g)
		case ScopeNamespace:
			if idx.namespaces == nil {
				idx.namespaces = map[string][]grant{}
			}
			idx.namespaces[a.Scope.name] = append(idx.namespaces[a.Scope.name], g)
		case ScopeRepository:
			if idx.repos == nil {
				idx.repos = map[string][]grant{}
			}
			idx.repos[a.Scope.name] = append(idx.repos[a.Scope.name], g)
		}
	}
	return idx
}

// compareAssignments orders by scope kind (registry, namespaces, repositories),
// then scope name, then role in the order of Roles.
func compareAssignments(x, y RoleAssignment) int {
	kind := func(k ScopeKind) int {
		switch k {
		case ScopeRegistry:
			return 0
		case ScopeNamespace:
			return 1
		}
		return 2
	}
	if c := kind(x.Scope.kind) - kind(y.Scope.kind); c != 0 {
		return c
	}
	if c := strings.Compare(x.Scope.name, y.Scope.name); c != 0 {
		return c
	}
	return slices.Index(Roles, x.Role) - slices.Index(Roles, y.Role)
}

// Actor returns the actor the index decides for.
func (idx *AccessIndex) Actor() Actor { return idx.actor }

// Assignments returns the assignments that count, in a stable order: registry,
// namespaces, repositories, each by name, then by role.
func (idx *AccessIndex) Assignments() []RoleAssignment { return slices.Clone(idx.held) }

// find returns the narrowest assignment that allows one of the actions in want
// on repo, or nil.
func (idx *AccessIndex) find(want actionSet, repo string) *RoleAssignment {
	if idx.union&want == 0 {
		return nil
	}
	if repo != "" {
		if a := first(idx.repos[repo], want); a != nil {
			return a
		}
		for i := len(repo) - 1; i > 0; i-- {
			if repo[i] == '/' {
				if a := first(idx.namespaces[repo[:i]], want); a != nil {
					return a
				}
			}
		}
	}
	return first(idx.registry, want)
}

func first(gs []grant, want actionSet) *RoleAssignment {
	for _, g := range gs {
		if g.actions&want != 0 {
			return g.a
		}
	}
	return nil
}

// Decide answers whether the index's actor may do action on repo; see the
// function Decide.
func (idx *AccessIndex) Decide(action Action, repo string) Decision {
	d := Decision{Actor: idx.actor, Action: action, Repository: repo}
	bit := action.bit()
	if bit == 0 {
		d.Reason = CodeInvalid
		d.Message = fmt.Sprintf("%q is not an action", Truncate(string(action), 80))
		d.Hint = "use one of: " + joinActions(Actions)
		return d
	}
	if a := idx.find(bit, repo); a != nil {
		d.Allowed, d.Allowing = true, a
		return d
	}
	target := RegistryScope
	if repo != "" {
		target = Scope{kind: ScopeRepository, name: repo}
	}
	idx.deny(&d, target)
	return d
}

// Allows reports whether the actor may do action on repo, as Decide does,
// without the explanation.
func (idx *AccessIndex) Allows(action Action, repo string) bool {
	bit := action.bit()
	return bit != 0 && idx.find(bit, repo) != nil
}

// MaySeeGroupsOf reports whether the index's actor may learn the groups of
// the principal with principalID, and the roles held through them: their
// own, or anyone's for an owner of registry (as principal show has it).
// Groups come from the identity provider and are the person's to know.
func (idx *AccessIndex) MaySeeGroupsOf(principalID string) bool {
	return principalID == idx.actor.ID || idx.CanAssign(RegistryScope).Allowed
}

// CanAssign answers whether the index's actor may assign or revoke roles on
// scope; see the function CanAssign.
func (idx *AccessIndex) CanAssign(scope Scope) Decision {
	d := Decision{Actor: idx.actor, Action: ActionRoleAssign, Scope: scope}
	if scope.IsZero() {
		d.Reason = CodeInvalid
		d.Message = "no scope was named"
		d.Hint = `use "registry", a namespace such as "team/*", or a repository such as "team/app"`
		return d
	}
	for i := range idx.held {
		a := &idx.held[i]
		if a.Role.Allows(ActionRoleAssign) && a.Scope.Contains(scope) {
			// held is sorted registry first; prefer the narrowest owner scope.
			if d.Allowing == nil || compareAssignments(*a, *d.Allowing) > 0 {
				d.Allowing = a
			}
		}
	}
	if d.Allowing != nil {
		d.Allowed = true
		return d
	}
	idx.deny(&d, scope)
	return d
}

// deny fills in a refusal of d.Action on target. It writes the message with a
// builder rather than fmt: a refusal is on the request path too.
func (idx *AccessIndex) deny(d *Decision, target Scope) {
	d.Reason = CodeRoleMissing
	d.Missing = narrowestRole(d.Action)
	d.MissingScope = target
	d.Held = idx.held[:len(idx.held):len(idx.held)]

	var b strings.Builder
	b.Grow(256)
	if idx.actor.anonymous() {
		b.WriteString("anonymous requests")
	} else {
		b.WriteString("principal ")
		b.WriteString(idx.actor.display())
	}
	b.WriteString(" may not ")
	b.WriteString(string(d.Action))
	switch {
	case !d.Scope.IsZero():
		b.WriteString(" on scope ")
		b.WriteString(d.Scope.String())
	case d.Repository == "":
		b.WriteString(" on the registry")
	default:
		b.WriteString(" on repository ")
		b.WriteString(d.Repository)
	}
	b.WriteString(": ")
	idx.writeHeld(&b)
	b.WriteString("; ")
	b.WriteString(string(d.Action))
	b.WriteString(" needs the role ")
	n := 0
	for _, r := range Roles {
		if r.Allows(d.Action) {
			if n > 0 {
				b.WriteString(" or ")
			}
			b.WriteString(string(r))
			n++
		}
	}
	if !d.Scope.IsZero() {
		b.WriteString(" on that scope or one containing it")
	} else {
		b.WriteString(" on a scope covering it")
	}

	if idx.actor.anonymous() {
		b.WriteString("; anonymous requests may only pull, where a pull role makes a scope public")
		d.Reason = CodeCredentialsMissing
		d.Message = b.String()
		d.Hint = "send credentials of a principal that holds " + string(d.Missing) + " on " + target.String() +
			": berth login HOST, or docker login HOST -u CLIENT_ID"
		return
	}
	d.Message = b.String()
	d.Hint = "berth role assign --principal " + idx.actor.display() + " --role " + string(d.Missing) + " --scope " + target.String()
}

// maxHeldInMessage bounds the assignments a refusal lists; Decision.Held has
// them all.
const maxHeldInMessage = 10

func (idx *AccessIndex) writeHeld(b *strings.Builder) {
	if len(idx.held) == 0 {
		b.WriteString("it holds no role")
		return
	}
	b.WriteString("it holds ")
	for i, a := range idx.held {
		if i == maxHeldInMessage {
			b.WriteString(" and ")
			b.WriteString(strconv.Itoa(len(idx.held) - i))
			b.WriteString(" more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(a.Role))
		b.WriteString(" on ")
		b.WriteString(a.Scope.String())
	}
}

// Listable reports whether repo appears in the actor's catalog: when it may
// list it (catalog:list on a scope covering it) or read its metadata (pull,
// push or owner there). With catalog:list on the registry every repository is
// listable.
func (idx *AccessIndex) Listable(repo string) bool {
	return idx.find(setOf(ActionCatalogList, ActionMetadataRead), repo) != nil
}

// The actions of the Docker token authentication spec's resource scopes
// ("repository:NAME:pull,push", "registry:catalog:*").
const (
	dockerPull   = "pull"
	dockerPush   = "push"
	dockerDelete = "delete"
	dockerAll    = "*"
)

// DockerAction returns the Docker token action that a token must carry for a
// request needing a: "pull" for content:read and metadata:read, "push" for
// content:write and metadata:write, "delete" for content:delete, "*" for
// catalog:list (as "registry:catalog:*"), and "" for an action no Docker
// token carries (role:assign, which only the management API performs).
func DockerAction(a Action) string {
	switch a {
	case ActionContentRead, ActionMetadataRead:
		return dockerPull
	case ActionContentWrite, ActionMetadataWrite:
		return dockerPush
	case ActionContentDelete:
		return dockerDelete
	case ActionCatalogList:
		return dockerAll
	}
	return ""
}

var (
	dockerPullActions = setOf(ActionContentRead, ActionMetadataRead)
	// push requires pull, as in the Docker token spec: a client that pushes
	// also reads (blob HEADs, the manifest it replaces).
	dockerPushActions   = dockerPullActions | setOf(ActionContentWrite, ActionMetadataWrite)
	dockerDeleteActions = setOf(ActionContentDelete)
)

// dockerNeeds lists what each Docker repository action needs, writes first so
// that a refused push names the push role rather than pull.
var dockerNeeds = map[string][]Action{
	dockerPull:   {ActionContentRead, ActionMetadataRead},
	dockerPush:   {ActionContentWrite, ActionMetadataWrite, ActionContentRead, ActionMetadataRead},
	dockerDelete: {ActionContentDelete},
}

// DockerActionNeeds returns the actions a Docker repository action ("pull",
// "push", "delete") needs, writes first, or nil for another word.
func DockerActionNeeds(action string) []Action { return slices.Clone(dockerNeeds[action]) }

// DecideDocker decides a Docker token action ("pull", "push", "delete") on a
// repository: allowed when every action it needs is (push needs pull's too),
// otherwise the decision of the first that is not, with its explanation; an
// unknown action is invalid. The allowed path allocates nothing.
func (idx *AccessIndex) DecideDocker(action, repo string) Decision {
	needs, ok := dockerNeeds[action]
	if !ok {
		return Decision{Actor: idx.actor, Repository: repo, Reason: CodeInvalid,
			Message: fmt.Sprintf("%q is not a Docker action on a repository", Truncate(action, 40)),
			Hint:    "use pull, push or delete"}
	}
	for _, a := range needs {
		if idx.find(a.bit(), repo) == nil {
			return idx.Decide(a, repo)
		}
	}
	return Decision{Allowed: true, Actor: idx.actor, Action: needs[0], Repository: repo}
}

// DockerActions returns what the token endpoint grants for one requested
// resource scope: the intersection of the requested actions and what actor's
// assignments permit, as the Docker token spec requires. See
// AccessIndex.DockerActions.
func DockerActions(assignments []RoleAssignment, actor Actor, resourceType, name string, requested []string) []string {
	return NewAccessIndex(actor, assignments).DockerActions(resourceType, name, requested)
}

// DockerActions returns the granted subset of requested for the resource
// resourceType:name, in the order pull, push, delete; nil when nothing is
// granted.
//
// For resourceType "repository": "pull" is granted with both content:read and
// metadata:read on name, "push" with pull's actions plus content:write and
// metadata:write (push requires pull), "delete" with content:delete, and "*"
// stands for every one of the three the actor may do (it is expanded, never
// granted as "*", so a token always lists what it allows).
//
// For "registry:catalog" with "*" requested: "*" is granted when the actor could
// list anything, that is when it holds catalog:list or metadata:read on any
// scope; the catalog handler then filters the listing with Listable.
//
// For "registry:api", which lets an access token call the management API:
// "pull" (its reading endpoints) and "*" (every endpoint) are granted to
// every principal but the anonymous one; each endpoint then decides by the
// principal's roles, as it does for Basic credentials.
//
// For "registry:metrics": "pull" and "*" are granted with catalog:list on the
// registry, which scraping /metrics needs.
//
// Unknown actions, resource types and names are granted nothing.
func (idx *AccessIndex) DockerActions(resourceType, name string, requested []string) []string {
	switch resourceType {
	case "registry":
		return idx.registryActions(name, requested)
	case "repository":
	default:
		return nil
	}
	if ValidateRepositoryName(name) != nil {
		return nil
	}
	var pull, push, del bool
	for _, r := range requested {
		switch r {
		case dockerPull:
			pull = true
		case dockerPush:
			push = true
		case dockerDelete:
			del = true
		case dockerAll:
			pull, push, del = true, true, true
		}
	}
	var granted []string
	if pull && idx.allowsAll(dockerPullActions, name) {
		granted = append(granted, dockerPull)
	}
	if push && idx.allowsAll(dockerPushActions, name) {
		granted = append(granted, dockerPush)
	}
	if del && idx.allowsAll(dockerDeleteActions, name) {
		granted = append(granted, dockerDelete)
	}
	return granted
}

// registryActions is DockerActions for the registry resource name.
func (idx *AccessIndex) registryActions(name string, requested []string) []string {
	var may bool
	switch name {
	case ResourceCatalog:
		if slices.Contains(requested, dockerAll) && idx.union&setOf(ActionCatalogList, ActionMetadataRead) != 0 {
			return []string{dockerAll}
		}
		return nil
	case ResourceAPI:
		may = !idx.actor.anonymous()
	case ResourceMetrics:
		may = idx.find(ActionCatalogList.bit(), "") != nil
	}
	if !may {
		return nil
	}
	var granted []string
	for _, a := range []string{dockerPull, dockerAll} {
		if slices.Contains(requested, a) {
			granted = append(granted, a)
		}
	}
	return granted
}

// allowsAll reports whether every action of want is allowed on repo, each by
// any assignment (assignments add up).
func (idx *AccessIndex) allowsAll(want actionSet, repo string) bool {
	for _, a := range Actions {
		if b := a.bit(); want&b != 0 && idx.find(b, repo) == nil {
			return false
		}
	}
	return true
}
