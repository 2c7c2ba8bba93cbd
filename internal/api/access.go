package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth"
)

// accessIndex returns the caller's current role assignments, indexed. It reads
// the store, not the Provider's cache: a management decision must see a role
// revoked a moment ago by another replica.
func (h *handler) accessIndex(ctx context.Context, c *berth.Caller) (*berth.AccessIndex, error) {
	as, err := h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: c.Actor.ID})
	if err != nil {
		return nil, err
	}
	if c.Principal != nil {
		member, _, err := h.groupAssignments(ctx, *c.Principal)
		if err != nil {
			return nil, err
		}
		as = append(as, member...)
	}
	return berth.NewAccessIndex(c.Actor, as), nil
}

// groupAssignments returns what p holds through its groups (a person's
// groups of their latest sign-in), and every group assignment.
func (h *handler) groupAssignments(ctx context.Context, p berth.Principal) ([]berth.RoleAssignment, []berth.GroupRoleAssignment, error) {
	return berth.GroupAssignments(ctx, h.cfg.Store, p)
}

// requireAssign returns nil when the caller may assign roles on scope (it is an
// owner of scope or of a scope containing it), and otherwise role_missing
// saying that doing needs it.
func (h *handler) requireAssign(ctx context.Context, c *berth.Caller, scope berth.Scope, doing string) error {
	idx, err := h.accessIndex(ctx, c)
	if err != nil {
		return err
	}
	d := idx.CanAssign(scope)
	if d.Allowed {
		return nil
	}
	e := berth.AsError(d.Err())
	if e.Code != berth.CodeRoleMissing {
		return e
	}
	where := ""
	if scope != berth.RegistryScope {
		where = " or on a scope containing it"
	}
	held := "no role"
	if len(d.Held) > 0 {
		parts := make([]string, 0, len(d.Held))
		for i, a := range d.Held {
			if i == 10 {
				parts = append(parts, fmt.Sprintf("and %d more", len(d.Held)-i))
				break
			}
			parts = append(parts, string(a.Role)+" on "+a.Scope.String())
		}
		held = strings.Join(parts, ", ")
	}
	e.Message = fmt.Sprintf("%s needs the role owner on %s%s; principal %s holds %s", doing, scope, where, c.Actor.Name, held)
	return e
}

// requireOwner returns nil when the caller is an owner of the registry scope,
// which managing principals and secrets needs.
func (h *handler) requireOwner(ctx context.Context, c *berth.Caller, doing string) error {
	return h.requireAssign(ctx, c, berth.RegistryScope, doing)
}

// AccessCheck is the answer of GET /api/v1/access/check: the decision as the
// registry would take it now ("allowed", "reason", "hint", the assignment
// that allowed it or the role that is missing), and the action as it was
// asked for.
type AccessCheck struct {
	berth.Decision
	// RequestedAction is the action parameter: a berth action, or the Docker
	// action (pull, push, delete) that Decision.Action stands for.
	RequestedAction string `json:"requested_action"`
}

// parseCheckAction returns the berth actions that s, a berth action or a
// Docker one, needs.
func parseCheckAction(s string) ([]berth.Action, error) {
	if as := berth.DockerActionNeeds(s); as != nil {
		return as, nil
	}
	if a := berth.Action(s); a.Valid() {
		return []berth.Action{a}, nil
	}
	names := make([]string, len(berth.Actions))
	for i, a := range berth.Actions {
		names[i] = string(a)
	}
	what := fmt.Sprintf("%q is not an action", berth.Truncate(s, 80))
	if s == "" {
		what = "no action was named"
	}
	return nil, berth.Errorf(berth.CodeInvalid, "%s", what).
		WithHint("use pull, push or delete, or one of: %s", strings.Join(names, ", "))
}

// checkAccess replays a decision: may principal do action on repository?
//
// GET /api/v1/access/check?principal=P&action=A&repository=R. The principal
// defaults to the caller. Anyone may check themselves; checking another
// principal needs owner on a scope covering the repository (on the registry
// for a registry-wide action). A denial is a successful check: the answer is
// 200 with "allowed": false.
func (h *handler) checkAccess(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	q := r.URL.Query()
	name, actionText, repo := q.Get("principal"), q.Get("action"), q.Get("repository")
	actions, err := parseCheckAction(actionText)
	if err != nil {
		return err
	}
	scope := berth.RegistryScope
	if repo != "" {
		if err := berth.ValidateRepositoryName(repo); err != nil {
			return err
		}
		if scope, err = berth.RepositoryScope(repo); err != nil {
			return err
		}
	} else if a := actions[0]; a != berth.ActionCatalogList && a != berth.ActionRoleAssign {
		return berth.Errorf(berth.CodeInvalid, "%s is an action on a repository, and no repository was named", actionText).
			WithHint("berth access check --principal P --action %s --repository NAME", actionText)
	}

	target := c.Actor
	targetPrincipal := c.Principal
	disabled := false
	if name != "" && name != c.Actor.Name {
		if err := h.requireAssign(ctx, c, scope, "checking the access of another principal"); err != nil {
			return err
		}
		p, err := h.principalByName(ctx, name)
		switch {
		case berth.IsCode(err, berth.CodeNotFound) && name == berth.AnonymousName:
			// No anonymous principal exists: nothing is public.
			target = berth.Actor{Name: berth.AnonymousName}
		case err != nil:
			return err
		default:
			target = berth.Actor{ID: p.ID, Name: p.Name}
			targetPrincipal = &p
			disabled = p.Disabled
		}
	}
	var assignments []berth.RoleAssignment
	if target.ID != "" {
		if assignments, err = h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: target.ID}); err != nil {
			return err
		}
	}
	var groups []berth.GroupRoleAssignment
	if targetPrincipal != nil && target.ID != "" {
		var member []berth.RoleAssignment
		if member, groups, err = h.groupAssignments(ctx, *targetPrincipal); err != nil {
			return err
		}
		assignments = append(assignments, member...)
	}
	idx := berth.NewAccessIndex(target, assignments)
	d := idx.Decide(actions[0], repo)
	for _, a := range actions[1:] {
		if !d.Allowed {
			break
		}
		if next := idx.Decide(a, repo); !next.Allowed {
			d = next
		}
	}
	if targetPrincipal != nil && targetPrincipal.Kind == berth.PrincipalUser {
		d.NameGroups(berth.GroupsGranting(groups, d.Action, repo))
	}
	if d.Allowed && slices.ContainsFunc(actions, berth.CacheRefuses) && h.cfg.Upstreams != nil {
		// As the registry decides: a write into a cache namespace is
		// refused whatever the roles allow.
		ups, err := h.cfg.Upstreams.FindUpstreams(ctx)
		if err != nil {
			return err
		}
		if u, ok := berth.UpstreamFor(ups, repo); ok {
			e := berth.CacheReadOnly(u, repo)
			d.Allowed, d.Allowing = false, nil
			d.Reason, d.Message, d.Hint = e.Code, e.Message, e.Hint
		}
	}
	if disabled && target.Name != berth.AnonymousName {
		// Authentication comes first: a disabled principal gets no further.
		d.Allowed = false
		d.Reason = berth.CodePrincipalDisabled
		d.Message = fmt.Sprintf("principal %s is disabled, so it cannot authenticate, whatever its roles allow", target.Name)
		d.Hint = "berth principal enable " + target.Name
	}
	return writeJSON(w, http.StatusOK, AccessCheck{Decision: d, RequestedAction: actionText})
}
