package console

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// routeMore registers the administration pages.
func (h *Handler) routeMore(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /principals", h.page(h.principals))
	mux.Handle("GET /principals/{name}", h.page(h.principal))
	mux.Handle("POST /principals/{name}/secrets", h.page(h.addSecret))
	mux.Handle("POST /principals/{name}/secrets/{id}/remove", h.page(h.removeSecret))
	mux.Handle("POST /principals/{name}/disable", h.page(h.setDisabled(true)))
	mux.Handle("POST /principals/{name}/enable", h.page(h.setDisabled(false)))
	mux.Handle("POST /principals/{name}/roles", h.page(h.assignRole))
	mux.Handle("POST /principals/{name}/roles/revoke", h.page(h.revokeRole))
}

type principalRow struct {
	berth.Principal
	Roles []api.RoleAssignment
}

// principals lists every principal with kind, state and roles (owner only:
// the API decides).
func (h *Handler) principals(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ctx := r.Context()
	ps, err := s.api.ListPrincipals(ctx)
	if err != nil {
		return nil, err
	}
	roles, err := s.api.ListRoles(ctx, "")
	if err != nil {
		return nil, err
	}
	byID := map[string][]api.RoleAssignment{}
	for _, ra := range roles {
		byID[ra.PrincipalID] = append(byID[ra.PrincipalID], ra)
	}
	rows := make([]principalRow, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, principalRow{Principal: p, Roles: byID[p.ID]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return &view{Title: "Principals", Data: rows}, nil
}

type principalData struct {
	api.PrincipalDetail
	// Secrets is the expiry timeline: soonest first, each with the time it
	// has left.
	Secrets   []secretRow
	Lifetimes []string
	Roles     []berth.Role
	// New is the secret just added: shown once, in this answer only.
	New       *api.NewSecret
	Host, URL string
	// Refusals are the principal's refusals of the last 24 hours, newest
	// first.
	Refusals []berth.AuditEvent
}

func (h *Handler) principalView(r *http.Request, s *session, name string) (*view, *principalData, error) {
	ctx := r.Context()
	p, err := s.api.GetPrincipal(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := s.api.ListSecrets(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(secrets, func(i, j int) bool { return secrets[i].Expires.Before(secrets[j].Expires) })
	page, err := s.api.Audit(ctx, url.Values{"since": {"24h"}, "principal": {name}, "result": {string(berth.AuditDenied)}, "limit": {"20"}, "last": {"true"}})
	if err != nil {
		return nil, nil, err
	}
	refusals := page.Events
	for i, j := 0, len(refusals)-1; i < j; i, j = i+1, j-1 {
		refusals[i], refusals[j] = refusals[j], refusals[i]
	}
	base := h.baseURL(r)
	rows := make([]secretRow, 0, len(secrets))
	for _, sec := range secrets {
		rows = append(rows, newSecretRow(sec, h.now()))
	}
	d := &principalData{PrincipalDetail: p, Secrets: rows, Refusals: refusals, Lifetimes: []string{"90d", "30d", "7d", "180d", "365d"},
		Roles: berth.Roles, URL: base, Host: hostOf(base)}
	return &view{Title: "Principal " + p.Name, Page: "principal", Data: d}, d, nil
}

// principal shows one principal: its secrets by expiry, its roles, and the
// forms that change them.
func (h *Handler) principal(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	v, _, err := h.principalView(r, s, r.PathValue("name"))
	return v, err
}

// addSecret adds a secret and answers with the principal's page showing
// its value once (never stored, never in a URL, not cached).
func (h *Handler) addSecret(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	ns, err := s.api.AddSecret(r.Context(), name, api.AddSecretRequest{ExpiresIn: r.PostFormValue("expires_in"), Description: r.PostFormValue("description")})
	if err != nil {
		return nil, err
	}
	v, d, err := h.principalView(r, s, name)
	if err != nil {
		return nil, err
	}
	d.New, v.NoStore = &ns, true
	return v, nil
}

func (h *Handler) removeSecret(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	if _, err := s.api.RemoveSecret(r.Context(), name, r.PathValue("id")); err != nil {
		return nil, err
	}
	return h.back(w, r, "/principals/"+url.PathEscape(name))
}

func (h *Handler) setDisabled(disabled bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
		name := r.PathValue("name")
		var err error
		if disabled {
			_, err = s.api.DisablePrincipal(r.Context(), name)
		} else {
			_, err = s.api.EnablePrincipal(r.Context(), name)
		}
		if err != nil {
			return nil, err
		}
		return h.back(w, r, "/principals/"+url.PathEscape(name))
	}
}

func (h *Handler) assignRole(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	if _, err := s.api.AssignRole(r.Context(), name, r.PostFormValue("role"), r.PostFormValue("scope")); err != nil {
		return nil, err
	}
	return h.back(w, r, "/principals/"+url.PathEscape(name))
}

func (h *Handler) revokeRole(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	if _, err := s.api.RevokeRole(r.Context(), name, r.PostFormValue("role"), r.PostFormValue("scope")); err != nil {
		return nil, err
	}
	return h.back(w, r, "/principals/"+url.PathEscape(name))
}

// back answers a change with a redirect to the page it was made on
// (POST-redirect-GET), so that reloading does not repeat it.
func (h *Handler) back(w http.ResponseWriter, r *http.Request, page string) (*view, error) {
	http.Redirect(w, r, page, http.StatusSeeOther)
	return nil, nil
}

// hostOf is base without its scheme: the registry host of docker login.
func hostOf(base string) string {
	return strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
}

// baseURL is the registry's public URL, or the one the request came to.
func (h *Handler) baseURL(r *http.Request) string {
	if h.URL != "" {
		return strings.TrimSuffix(h.URL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// secretRow is a secret on its principal's expiry timeline.
type secretRow struct {
	api.Secret
	// Left says how long it has, or had: "12 days left", "expired 3 days
	// ago", "revoked".
	Left string
	// Days is the days left, rounded (0 once past), of Span, its lifetime
	// in days: the meter's value and maximum.
	Days, Span int
}

func newSecretRow(s api.Secret, now time.Time) secretRow {
	const day = 24 * time.Hour
	r := secretRow{Secret: s, Span: max(1, int(s.Expires.Sub(s.Created)/day))}
	left := s.Expires.Sub(now)
	switch {
	case s.State == berth.SecretRevoked:
		r.Left = "revoked"
	case left <= -day:
		r.Left = "expired " + plural(int(-left/day), "day") + " ago"
	case left <= 0:
		r.Left = "expired today"
	case left < day:
		r.Left = "expires today"
	default:
		n := berth.RoundDays(left)
		r.Days = min(n, r.Span)
		r.Left = plural(n, "day") + " left"
	}
	return r
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
