package api

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/berth-dev/berth"
)

// RoleAssignment is a role assignment as the API shows it: the principal by
// name, the role and the scope in their text forms.
type RoleAssignment struct {
	Principal   string `json:"principal,omitempty"`
	PrincipalID string `json:"principal_id,omitempty"`
	// Group is the group PROVIDER:GROUP an assignment gives to its members;
	// "" for a principal's own.
	Group   berth.Group `json:"group,omitempty"`
	Role    berth.Role  `json:"role"`
	Scope   string      `json:"scope"`
	Created time.Time   `json:"created_at"`
	// CreatedBy is the id of the principal that assigned it; "" when berth
	// did (the first admin).
	CreatedBy string `json:"created_by,omitempty"`
	// Warnings says what the assignment probably did not mean (scopewarn.go).
	Warnings []string `json:"warnings,omitempty"`
}

// RoleRequest is the body of POST /api/v1/roles.
type RoleRequest struct {
	Principal string `json:"principal,omitempty"`
	// Group, instead of Principal, assigns the role to every member of the
	// group PROVIDER:GROUP.
	Group string `json:"group,omitempty"`
	Role  string `json:"role"`
	Scope string `json:"scope"`
}

// RoleList is the answer of GET /api/v1/roles.
type RoleList struct {
	Roles []RoleAssignment `json:"roles"`
}

func roleView(a berth.RoleAssignment) RoleAssignment {
	return RoleAssignment{Principal: a.PrincipalName, PrincipalID: a.PrincipalID, Role: a.Role, Scope: a.Scope.String(),
		Created: a.Created, CreatedBy: a.CreatedBy}
}

// roleViews returns the views of as, ordered by principal name, scope, role.
func roleViews(as []berth.RoleAssignment) []RoleAssignment {
	out := make([]RoleAssignment, 0, len(as))
	for _, a := range as {
		out = append(out, roleView(a))
	}
	slices.SortFunc(out, func(x, y RoleAssignment) int {
		return cmp.Or(cmp.Compare(x.Principal, y.Principal), cmp.Compare(x.Scope, y.Scope),
			cmp.Compare(slices.Index(berth.Roles, x.Role), slices.Index(berth.Roles, y.Role)))
	})
	return out
}

// parseRoleScope reads a role and a scope, each required.
func parseRoleScope(role, scope string) (berth.Role, berth.Scope, error) {
	if role == "" {
		return "", berth.Scope{}, berth.Errorf(berth.CodeInvalid, "no role was named").
			WithHint("name one of pull, push, delete, catalog, owner: --role pull")
	}
	ro, err := berth.ParseRole(role)
	if err != nil {
		return "", berth.Scope{}, err
	}
	if scope == "" {
		return "", berth.Scope{}, berth.Errorf(berth.CodeInvalid, "no scope was named").
			WithHint(`name "registry", a namespace such as "team/*", or a repository such as "team/app": --scope team/*`)
	}
	sc, err := berth.ParseScope(scope)
	if err != nil {
		return "", berth.Scope{}, err
	}
	return ro, sc, nil
}

// assignRole gives a principal a role on a scope.
//
// POST /api/v1/roles {"principal", "role", "scope"} → 201 with the
// assignment. Needs owner on the scope or one containing it. The anonymous
// principal may hold only pull (which makes the scope publicly pullable); it is
// created on its first assignment. conflict when the principal already holds
// the role there.
func (h *handler) assignRole(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	var req RoleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	role, scope, err := parseRoleScope(req.Role, req.Scope)
	if err != nil {
		return err
	}
	if err := h.requireAssign(ctx, c, scope, "assigning a role on "+scope.String()); err != nil {
		return err
	}
	if req.Group != "" {
		if req.Principal != "" {
			return berth.Errorf(berth.CodeInvalid, "name a principal or a group, not both").WithHint("--principal NAME or --group PROVIDER:GROUP")
		}
		return h.assignGroupRole(w, r, c, req.Group, role, scope)
	}
	if req.Principal == "" {
		return berth.Errorf(berth.CodeInvalid, "no principal was named").WithHint("--principal NAME, or --group PROVIDER:GROUP")
	}
	a := berth.RoleAssignment{PrincipalName: req.Principal, Role: role, Scope: scope, Created: h.now(), CreatedBy: c.Actor.ID}
	p, err := h.principalByName(ctx, req.Principal)
	switch {
	case err == nil:
		a.PrincipalID = p.ID
	case berth.IsCode(err, berth.CodeNotFound) && req.Principal == berth.AnonymousName:
		// Refuse any role but pull before creating the principal for it.
		probe := a
		probe.PrincipalID = berth.AnonymousName
		if err := probe.Validate(); err != nil {
			return err
		}
		if p, err = h.createAnonymous(r, c); err != nil {
			return err
		}
		a.PrincipalID = p.ID
	default:
		return err
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := h.cfg.Store.CreateRoleAssignment(ctx, a); err != nil {
		if berth.IsCode(err, berth.CodeConflict) {
			return berth.Errorf(berth.CodeConflict, "principal %s already holds the role %s on %s", p.Name, role, scope).
				WithHint("berth role list --principal %s", p.Name)
		}
		return err
	}
	h.changed(r, c, "role assigned", slog.String("principal", p.Name), slog.String("role", string(role)), slog.String("scope", scope.String()))
	view := roleView(a)
	view.Warnings = h.scopeWarnings(ctx, scope)
	return writeJSON(w, http.StatusCreated, view)
}

// createAnonymous makes the anonymous principal, or returns it when a
// concurrent request just did.
func (h *handler) createAnonymous(r *http.Request, c *berth.Caller) (berth.Principal, error) {
	ctx := r.Context()
	p, err := berth.NewPrincipal(h.rand, berth.AnonymousName, berth.PrincipalService, h.now())
	if err != nil {
		return berth.Principal{}, err
	}
	err = h.cfg.Store.CreatePrincipal(ctx, p)
	if berth.IsCode(err, berth.CodeConflict) {
		return h.cfg.Store.FindPrincipalByName(ctx, berth.AnonymousName)
	} else if err != nil {
		return berth.Principal{}, err
	}
	h.changed(r, c, "principal created", slog.String("principal", p.Name))
	return p, nil
}

// revokeRole removes a principal's role on exactly a scope.
//
// DELETE /api/v1/roles?principal=P&role=R&scope=S → 200 with the assignment
// as it was. Needs owner on the scope or one containing it; refuses to revoke
// owner on registry from its last enabled holder. not_found when the principal
// does not hold that role on that scope.
func (h *handler) revokeRole(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	q := r.URL.Query()
	role, scope, err := parseRoleScope(q.Get("role"), q.Get("scope"))
	if err != nil {
		return err
	}
	if err := h.requireAssign(ctx, c, scope, "revoking a role on "+scope.String()); err != nil {
		return err
	}
	name := q.Get("principal")
	if g := q.Get("group"); g != "" && name == "" {
		return h.revokeGroupRole(w, r, c, g, role, scope)
	}
	if name == "" {
		return berth.Errorf(berth.CodeInvalid, "no principal was named").WithHint("--principal NAME, or --group PROVIDER:GROUP")
	}
	p, err := h.principalByName(ctx, name)
	if err != nil {
		return err
	}
	as, err := h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: p.ID, Scope: scope})
	if err != nil {
		return err
	}
	i := slices.IndexFunc(as, func(a berth.RoleAssignment) bool { return a.Role == role })
	if i < 0 {
		return notHeld(p.Name, role, scope)
	}
	if role == berth.RoleOwner && scope == berth.RegistryScope {
		if err := h.ensureOtherOwner(ctx, p, "revoking owner on registry from"); err != nil {
			return err
		}
	}
	if err := h.cfg.Store.DeleteRoleAssignment(ctx, p.ID, role, scope); err != nil {
		if berth.IsCode(err, berth.CodeNotFound) {
			return notHeld(p.Name, role, scope)
		}
		return err
	}
	h.changed(r, c, "role revoked", slog.String("principal", p.Name), slog.String("role", string(role)), slog.String("scope", scope.String()))
	return writeJSON(w, http.StatusOK, roleView(as[i]))
}

func notHeld(name string, role berth.Role, scope berth.Scope) error {
	return berth.Errorf(berth.CodeNotFound, "principal %s holds no role %s on exactly %s", name, role, scope).
		WithHint("berth role list --principal %s shows its roles and their scopes", name)
}

// listRoles lists role assignments.
//
// GET /api/v1/roles[?principal=P][&scope=S]. The answer holds the caller's
// own assignments and those on scopes it owns (all of them for an owner of
// registry): what it could revoke, and nothing more.
func (h *handler) listRoles(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	q := r.URL.Query()
	var f berth.RoleAssignmentFilter
	var subject berth.Principal // whose group memberships count as theirs
	if c.Principal != nil {
		subject = *c.Principal
	}
	if name := q.Get("principal"); name != "" {
		p, err := h.principalByName(ctx, name)
		if err != nil {
			return err
		}
		f.PrincipalID, subject = p.ID, p
	}
	if s := q.Get("scope"); s != "" {
		sc, err := berth.ParseScope(s)
		if err != nil {
			return err
		}
		f.Scope = sc
	}
	idx, err := h.accessIndex(ctx, c)
	if err != nil {
		return err
	}
	as, err := h.cfg.Store.FindRoleAssignments(ctx, f)
	if err != nil {
		return err
	}
	visible := as[:0]
	for _, a := range as {
		if a.PrincipalID == c.Actor.ID || idx.CanAssign(a.Scope).Allowed {
			visible = append(visible, a)
		}
	}
	views := roleViews(visible)
	// Group assignments, after the principals' own: the caller's own
	// groups', which are theirs; without ?principal=, those on scopes the
	// caller owns too. Another person's groups are theirs to know and a
	// registry owner's (as principal show has it): with ?principal= of
	// another, only a registry owner sees them.
	member, gs, err := h.groupAssignments(ctx, subject)
	if err != nil {
		return err
	}
	mine := subject.ID == c.Actor.ID
	if f.PrincipalID != "" && !idx.MaySeeGroupsOf(subject.ID) {
		member = nil
	}
	for _, g := range gs {
		if want := q.Get("group"); want != "" && string(g.Group) != want {
			continue
		}
		if !f.Scope.IsZero() && g.Scope != f.Scope {
			continue
		}
		held := slices.ContainsFunc(member, func(a berth.RoleAssignment) bool { return a.Group == g.Group })
		if f.PrincipalID != "" && !held {
			continue
		}
		if !(held && mine) && !idx.CanAssign(g.Scope).Allowed {
			continue
		}
		views = append(views, RoleAssignment{Group: g.Group, Role: g.Role, Scope: g.Scope.String(), Created: g.Created, CreatedBy: g.CreatedBy})
	}
	return writeJSON(w, http.StatusOK, RoleList{Roles: views})
}

// assignGroupRole gives every member of a group a role on a scope: POST
// /api/v1/roles {"group", "role", "scope"}. The caller's owner check is
// assignRole's; conflict when the group already holds it.
func (h *handler) assignGroupRole(w http.ResponseWriter, r *http.Request, c *berth.Caller, group string, role berth.Role, scope berth.Scope) error {
	ctx := r.Context()
	g := berth.GroupRoleAssignment{Group: berth.Group(group), Role: role, Scope: scope, Created: h.now(), CreatedBy: c.Actor.ID}
	if err := g.Validate(); err != nil {
		return err
	}
	if _, err := h.cfg.Store.FindIdentityProviderByName(ctx, g.Group.Provider()); berth.IsCode(err, berth.CodeNotFound) {
		return berth.IdPUnknown(g.Group.Provider())
	} else if err != nil {
		return err
	}
	if err := h.cfg.Store.CreateGroupRoleAssignment(ctx, g); err != nil {
		return err
	}
	h.changed(r, c, "role assigned", slog.String("principal", string(g.Group)), slog.String("group", string(g.Group)),
		slog.String("role", string(role)), slog.String("scope", scope.String()))
	view := RoleAssignment{Group: g.Group, Role: role, Scope: scope.String(), Created: g.Created, CreatedBy: g.CreatedBy}
	view.Warnings = h.scopeWarnings(ctx, scope)
	return writeJSON(w, http.StatusCreated, view)
}

// revokeGroupRole removes a group's role on exactly a scope: DELETE
// /api/v1/roles?group=G&role=R&scope=S.
func (h *handler) revokeGroupRole(w http.ResponseWriter, r *http.Request, c *berth.Caller, group string, role berth.Role, scope berth.Scope) error {
	ctx := r.Context()
	g, err := berth.ParseGroup(group)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteGroupRoleAssignment(ctx, g, role, scope); err != nil {
		return err
	}
	h.changed(r, c, "role revoked", slog.String("principal", string(g)), slog.String("group", string(g)),
		slog.String("role", string(role)), slog.String("scope", scope.String()))
	return writeJSON(w, http.StatusOK, RoleAssignment{Group: g, Role: role, Scope: scope.String()})
}
