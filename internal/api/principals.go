package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/berth-dev/berth"
)

// CreatePrincipalRequest is the body of POST /api/v1/principals.
type CreatePrincipalRequest struct {
	Name string `json:"name"`
	// Kind is "service" (the default) or "user".
	Kind berth.PrincipalKind `json:"kind,omitempty"`
}

// PrincipalList is the answer of GET /api/v1/principals: a page of principals
// ordered by name. Next, when set, is the after parameter of the next page.
type PrincipalList struct {
	Principals []berth.Principal `json:"principals"`
	Next       string            `json:"next,omitempty"`
}

// PrincipalDetail is the answer of GET /api/v1/principals/{name}: the
// principal and the roles it holds.
type PrincipalDetail struct {
	berth.Principal
	Roles []RoleAssignment `json:"roles"`
	// IdP, Groups and GroupRoles describe a person: the provider they sign
	// in through, their groups of the latest sign-in or refresh, and the
	// roles those groups give them.
	IdP        string           `json:"idp,omitempty"`
	Groups     []berth.Group    `json:"groups,omitempty"`
	GroupRoles []RoleAssignment `json:"group_roles,omitempty"`
}

// DeletedPrincipal is the answer of DELETE /api/v1/principals/{name}: the
// principal as it was, and what went with it.
type DeletedPrincipal struct {
	berth.Principal
	RolesRemoved         int `json:"roles_removed"`
	RefreshTokensRevoked int `json:"refresh_tokens_revoked"`
}

// Page sizes of GET /api/v1/principals.
const (
	defaultPageSize = 500
	maxPageSize     = 1000
)

// principalByName returns the principal named name: invalid for a name no
// principal may have, not_found with a hint when none has it.
func (h *handler) principalByName(ctx context.Context, name string) (berth.Principal, error) {
	if err := berth.ValidatePrincipalName(name); err != nil {
		return berth.Principal{}, err
	}
	p, err := h.cfg.Store.FindPrincipalByName(ctx, name)
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Principal{}, berth.Errorf(berth.CodeNotFound, "no principal is named %s", name).
			WithHint("berth principal list shows the principals; berth principal create %s makes one", name)
	}
	return p, err
}

// createPrincipal makes a principal, enabled and without secrets or roles.
//
// POST /api/v1/principals {"name", "kind"} → 201 with the principal. Needs
// owner on registry; conflict when the name is taken.
func (h *handler) createPrincipal(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "creating a principal"); err != nil {
		return err
	}
	var req CreatePrincipalRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Kind == "" {
		req.Kind = berth.PrincipalService
	}
	if req.Name == berth.AnonymousName {
		return berth.Errorf(berth.CodeInvalid, "%s is the principal unauthenticated requests act as; berth creates it when it is first given a role", berth.AnonymousName).
			WithHint("berth role assign --principal %s --role pull --scope NAMESPACE/* makes a scope publicly pullable", berth.AnonymousName)
	}
	p, err := berth.NewPrincipal(h.rand, req.Name, req.Kind, h.now())
	if err != nil {
		return err
	}
	if err := h.cfg.Store.CreatePrincipal(ctx, p); err != nil {
		if berth.IsCode(err, berth.CodeConflict) {
			return berth.Errorf(berth.CodeConflict, "a principal named %s exists", p.Name).
				WithHint("berth principal show %s", p.Name)
		}
		return err
	}
	h.changed(r, c, "principal created", slog.String("principal", p.Name), slog.String("client_id", p.ClientID))
	return writeJSON(w, http.StatusCreated, p)
}

// listPrincipals lists principals by name, a page at a time.
//
// GET /api/v1/principals[?after=NAME][&limit=N]. Needs owner on registry.
func (h *handler) listPrincipals(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing principals"); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := parseLimit(q, defaultPageSize, maxPageSize)
	if err != nil {
		return err
	}
	f := berth.PrincipalFilter{After: q.Get("after"), Limit: limit}
	if k := q.Get("kind"); k != "" {
		if f.Kind = berth.PrincipalKind(k); !f.Kind.Valid() {
			return berth.Errorf(berth.CodeInvalid, "kind %q is not %s or %s", berth.Truncate(k, 20), berth.PrincipalService, berth.PrincipalUser).
				WithHint("berth principal list --kind user")
		}
	}
	ps, err := h.cfg.Store.FindPrincipals(ctx, f)
	if err != nil {
		return err
	}
	out := PrincipalList{Principals: ps}
	if len(ps) == limit {
		out.Next = ps[len(ps)-1].Name
	}
	return writeJSON(w, http.StatusOK, out)
}

// showPrincipal shows one principal and its roles.
//
// GET /api/v1/principals/{name}. A principal may show itself; any other needs
// owner on registry.
func (h *handler) showPrincipal(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	name := r.PathValue("name")
	if name != c.Actor.Name {
		if err := h.requireOwner(ctx, c, "showing another principal"); err != nil {
			return err
		}
	}
	p, err := h.principalByName(ctx, name)
	if err != nil {
		return err
	}
	as, err := h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: p.ID})
	if err != nil {
		return err
	}
	detail := PrincipalDetail{Principal: p, Roles: roleViews(as)}
	if p.Kind == berth.PrincipalUser {
		if err := h.describePerson(r, p, &detail); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, detail)
}

// describePerson fills in what a person's detail shows of their sign-ins.
func (h *handler) describePerson(r *http.Request, p berth.Principal, d *PrincipalDetail) error {
	ctx := r.Context()
	link, err := h.cfg.Store.FindUserLinkByPrincipal(ctx, p.ID)
	if berth.IsCode(err, berth.CodeNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	idp, err := h.cfg.Store.FindIdentityProviderByID(ctx, link.ProviderID)
	switch {
	case err == nil:
		d.IdP = idp.Name
	case !berth.IsCode(err, berth.CodeNotFound): // a removed provider leaves its people
		return err
	}
	d.Groups = link.Groups
	member, _, err := h.groupAssignments(ctx, p)
	if err != nil {
		return err
	}
	for _, a := range member {
		d.GroupRoles = append(d.GroupRoles, RoleAssignment{Group: a.Group, Role: a.Role, Scope: a.Scope.String(), Created: a.Created, CreatedBy: a.CreatedBy})
	}
	return nil
}

// disablePrincipal stops a principal: its secrets, refresh tokens and access
// tokens stop working on the next request. Enabling it again revives them.
//
// POST /api/v1/principals/{name}/disable. Needs owner on registry; refuses the
// caller itself, the anonymous principal and the last owner of registry.
func (h *handler) disablePrincipal(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	return h.setDisabled(w, r, c, true)
}

// enablePrincipal undoes disablePrincipal.
//
// POST /api/v1/principals/{name}/enable. Needs owner on registry.
func (h *handler) enablePrincipal(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	return h.setDisabled(w, r, c, false)
}

func (h *handler) setDisabled(w http.ResponseWriter, r *http.Request, c *berth.Caller, disabled bool) error {
	ctx := r.Context()
	doing := "enabling a principal"
	if disabled {
		doing = "disabling a principal"
	}
	if err := h.requireOwner(ctx, c, doing); err != nil {
		return err
	}
	p, err := h.principalByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if p.Name == berth.AnonymousName {
		return berth.Errorf(berth.CodeInvalid, "the %s principal cannot be disabled or enabled: it never authenticates", berth.AnonymousName).
			WithHint("berth role list --principal %s shows what is public; berth role revoke --principal %s --role pull --scope SCOPE makes a scope private",
				berth.AnonymousName, berth.AnonymousName)
	}
	if disabled {
		if p.ID == c.Actor.ID {
			return berth.Errorf(berth.CodeInvalid, "principal %s cannot disable itself", p.Name).
				WithHint("disable it with the credentials of another owner of registry")
		}
		if err := h.ensureOtherOwner(ctx, p, "disabling"); err != nil {
			return err
		}
	}
	if p.Disabled == disabled {
		return writeJSON(w, http.StatusOK, p)
	}
	p, err = h.cfg.Store.UpdatePrincipal(ctx, p.ID, berth.PrincipalUpdate{Disabled: &disabled})
	if err != nil {
		return err
	}
	if disabled {
		// A person's sessions end at once, not only fail while disabled:
		// enabling the principal again does not bring them back.
		if _, err := h.cfg.Store.EndSessionsOfPrincipal(ctx, p.ID, h.now()); err != nil {
			return err
		}
	}
	msg := "principal enabled"
	if disabled {
		msg = "principal disabled"
	}
	h.changed(r, c, msg, slog.String("principal", p.Name))
	return writeJSON(w, http.StatusOK, p)
}

// deletePrincipal removes a principal with its secrets, revokes its refresh
// tokens and removes its role assignments. Its access tokens stop on the next
// request, since their subject no longer exists.
//
// DELETE /api/v1/principals/{name} → 200 with the principal as it was. Needs
// owner on registry; refuses the caller itself and the last owner of
// registry. Deleting the anonymous principal makes nothing public any more.
func (h *handler) deletePrincipal(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "deleting a principal"); err != nil {
		return err
	}
	p, err := h.principalByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if p.ID == c.Actor.ID {
		return berth.Errorf(berth.CodeInvalid, "principal %s cannot delete itself", p.Name).
			WithHint("delete it with the credentials of another owner of registry")
	}
	if err := h.ensureOtherOwner(ctx, p, "deleting"); err != nil {
		return err
	}
	// The assignments are counted before the principal goes: DeletePrincipal
	// removes them with it.
	as, err := h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: p.ID})
	if err != nil {
		return err
	}
	now := h.now()
	revoked, err := h.cfg.Store.RevokeRefreshTokensByPrincipal(ctx, p.ID, now)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeletePrincipal(ctx, p.ID); err != nil {
		return err
	}
	out := DeletedPrincipal{Principal: p, RolesRemoved: len(as), RefreshTokensRevoked: revoked}
	h.changed(r, c, "principal deleted", slog.String("principal", p.Name), slog.Int("roles_removed", out.RolesRemoved),
		slog.Int("refresh_tokens_revoked", revoked))
	return writeJSON(w, http.StatusOK, out)
}

// ensureOtherOwner returns conflict when p holds owner on registry and no
// other enabled principal does: doing that to p would leave no one able to
// manage principals and roles.
func (h *handler) ensureOtherOwner(ctx context.Context, p berth.Principal, doing string) error {
	as, err := h.cfg.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{Scope: berth.RegistryScope})
	if err != nil {
		return err
	}
	holds := false
	for _, a := range as {
		if a.Role != berth.RoleOwner {
			continue
		}
		if a.PrincipalID == p.ID {
			holds = true
			continue
		}
		other, err := h.cfg.Store.FindPrincipalByID(ctx, a.PrincipalID)
		if berth.IsCode(err, berth.CodeNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if !other.Disabled {
			return nil
		}
	}
	if !holds {
		return nil
	}
	return berth.Errorf(berth.CodeConflict, "%s principal %s would leave no enabled owner of registry, and no one able to manage principals and roles", doing, p.Name).
		WithHint("berth role assign --principal OTHER --role owner --scope registry first, naming another enabled principal").
		WithDetail("principal", p.Name)
}
