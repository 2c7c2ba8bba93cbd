package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/berth-dev/berth"
)

// AddSecretRequest is the body of POST /api/v1/principals/{name}/secrets.
type AddSecretRequest struct {
	// ExpiresIn is the lifetime, as berth.ParseLifetime reads it ("90d",
	// "12h"); empty means the default, 90 days.
	ExpiresIn   string `json:"expires_in,omitempty"`
	Description string `json:"description,omitempty"`
}

// NewSecret is the answer of POST /api/v1/principals/{name}/secrets, the one
// response that ever holds a secret's value.
type NewSecret struct {
	ID          string    `json:"id"`
	Principal   string    `json:"principal"`
	Hint        string    `json:"hint"`
	Value       string    `json:"value"`
	Description string    `json:"description"`
	Created     time.Time `json:"created_at"`
	Expires     time.Time `json:"expires_at"`
}

// Secret is a client secret as GET /api/v1/principals/{name}/secrets shows
// it: never its value or hash.
type Secret struct {
	ID          string            `json:"id"`
	Principal   string            `json:"principal"`
	Hint        string            `json:"hint"`
	Description string            `json:"description"`
	State       berth.SecretState `json:"state"`
	Created     time.Time         `json:"created_at"`
	Expires     time.Time         `json:"expires_at"`
	LastUsed    *time.Time        `json:"last_used_at"`
	Revoked     *time.Time        `json:"revoked_at,omitempty"`
}

// SecretList is the answer of GET /api/v1/principals/{name}/secrets.
type SecretList struct {
	Secrets []Secret `json:"secrets"`
}

// RemovedSecret is the answer of DELETE
// /api/v1/principals/{name}/secrets/{id}.
type RemovedSecret struct {
	Secret
	RefreshTokensRevoked int `json:"refresh_tokens_revoked"`
}

// ExpiringSecret is an active secret as GET /api/v1/secrets shows it: whose
// it is, when it expires, and the service connections that stop working with
// it. Never its value or hash.
type ExpiringSecret struct {
	// Kind is client_secret, or upstream for the credential berth holds for
	// an upstream registry of the pull-through cache (which has Upstream
	// and Username, and no principal, id or hint).
	Kind        string     `json:"kind"`
	Upstream    string     `json:"upstream,omitempty"`
	Username    string     `json:"username,omitempty"`
	Principal   string     `json:"principal"`
	ID          string     `json:"id"`
	Hint        string     `json:"hint"`
	Description string     `json:"description"`
	Created     time.Time  `json:"created_at"`
	Expires     time.Time  `json:"expires_at"`
	LastUsed    *time.Time `json:"last_used_at"`
	// DaysLeft is the whole days until it expires: 0 on its last day.
	DaysLeft int `json:"days_left"`
	// Connections names the service connections that authenticate with it,
	// by name; [] when none does.
	Connections []string `json:"connections"`
}

// ExpiringSecretList is the answer of GET /api/v1/secrets.
type ExpiringSecretList struct {
	// ExpiringWithin is the window asked for, as FormatLifetime writes it;
	// empty when every active secret is listed.
	ExpiringWithin string           `json:"expiring_within,omitempty"`
	Secrets        []ExpiringSecret `json:"secrets"`
}

// maxExpiryWindow bounds ?expiring_within: longer than any secret lives.
const maxExpiryWindow = 100 * 365 * 24 * time.Hour

func secretView(p berth.Principal, s berth.Secret, now time.Time) Secret {
	return Secret{ID: s.ID, Principal: p.Name, Hint: s.Hint, Description: s.Description, State: s.State(now),
		Created: s.Created, Expires: s.Expires, LastUsed: s.LastUsed, Revoked: s.Revoked}
}

// refuseAnonymousSecret returns invalid for the anonymous principal, which
// never authenticates.
func refuseAnonymousSecret(p berth.Principal) error {
	if p.Name != berth.AnonymousName {
		return nil
	}
	return berth.Errorf(berth.CodeInvalid, "the %s principal holds no secrets: it stands for requests that carry no credentials", berth.AnonymousName).
		WithHint("create a principal for the client (berth principal create NAME) and add a secret to it")
}

// addSecret makes a new client secret for a principal and shows its value,
// this once. The principal's other secrets stay valid, so a rotation adds the
// new one, switches clients over, then removes the old one.
//
// POST /api/v1/principals/{name}/secrets {"expires_in", "description"} → 201.
// Needs owner on registry; invalid for a lifetime over the server's maximum.
func (h *handler) addSecret(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "adding a secret"); err != nil {
		return err
	}
	p, err := h.principalByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := refuseAnonymousSecret(p); err != nil {
		return err
	}
	var req AddSecretRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	s, ns, err := h.createSecret(ctx, c, p, req.ExpiresIn, req.Description)
	if err != nil {
		return err
	}
	h.changed(r, c, "secret added", slog.String("principal", p.Name), slog.String("secret_id", s.ID),
		slog.String("hint", s.Hint), slog.Time("expires_at", s.Expires))
	return writeJSON(w, http.StatusCreated, ns)
}

// createSecret makes and stores a new client secret of principal p for
// caller c, valid for expiresIn (the default lifetime when empty), and
// returns it with the answer that shows its value this once. It returns
// invalid for a lifetime over the server's maximum, and c.MayMintSecrets'
// refusal. Every path that issues a secret goes through it, before it
// writes anything else.
func (h *handler) createSecret(ctx context.Context, c *berth.Caller, p berth.Principal, expiresIn, description string) (berth.Secret, *NewSecret, error) {
	if err := c.MayMintSecrets(p.Name); err != nil {
		return berth.Secret{}, nil, err
	}
	lifetime, err := berth.ParseLifetime(expiresIn, h.cfg.MaxSecretLifetime)
	if err != nil {
		if e := berth.AsError(err); e != nil {
			e.WithDetail("max_lifetime", berth.FormatLifetime(h.cfg.MaxSecretLifetime))
		}
		return berth.Secret{}, nil, err
	}
	s, v, err := berth.NewSecret(h.rand, h.cfg.Hasher, p.ID, h.now(), lifetime, description)
	if err != nil {
		return berth.Secret{}, nil, err
	}
	if err := h.cfg.Store.CreateSecret(ctx, s); err != nil {
		return berth.Secret{}, nil, err
	}
	return s, &NewSecret{ID: s.ID, Principal: p.Name, Hint: s.Hint, Value: v.Reveal(), Description: s.Description,
		Created: s.Created, Expires: s.Expires}, nil
}

// listSecrets lists a principal's secrets, removed ones included, with their
// state: active, expired or revoked.
//
// GET /api/v1/principals/{name}/secrets. A principal may list its own; any
// other needs owner on registry.
func (h *handler) listSecrets(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	name := r.PathValue("name")
	if name != c.Actor.Name {
		if err := h.requireOwner(ctx, c, "listing the secrets of another principal"); err != nil {
			return err
		}
	}
	p, err := h.principalByName(ctx, name)
	if err != nil {
		return err
	}
	ss, err := h.cfg.Store.FindSecrets(ctx, p.ID)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	out := SecretList{Secrets: make([]Secret, 0, len(ss))}
	for _, s := range ss {
		out.Secrets = append(out.Secrets, secretView(p, s, now))
	}
	return writeJSON(w, http.StatusOK, out)
}

// listExpiringSecrets lists the active secrets of every principal (or of one,
// with ?principal=NAME) that expire within ?expiring_within (a duration such
// as 30d; without it, every active secret), soonest first, each with the
// service connections that depend on it. Expired and removed secrets are not
// listed: they authenticate nothing any more.
//
// GET /api/v1/secrets?expiring_within=30d[&principal=NAME]. Needs owner on
// registry; invalid for a malformed window.
func (h *handler) listExpiringSecrets(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing the secrets of every principal"); err != nil {
		return err
	}
	q := r.URL.Query()
	now := h.cfg.Now()
	var out ExpiringSecretList
	until := time.Time{} // zero: no bound
	if v := q.Get("expiring_within"); v != "" {
		window, err := berth.ParseLifetime(v, maxExpiryWindow)
		if err != nil {
			return berth.Errorf(berth.CodeInvalid, "expiring_within %q is not a positive duration of at most %s", berth.Truncate(v, 40), berth.FormatLifetime(maxExpiryWindow)).
				WithHint("give a window such as 30d, 7d or 12h: berth secret list --expiring-within 30d")
		}
		until = now.Add(window)
		out.ExpiringWithin = berth.FormatLifetime(window)
	}
	var principals []berth.Principal
	if name := q.Get("principal"); name != "" {
		p, err := h.principalByName(ctx, name)
		if err != nil {
			return err
		}
		principals = []berth.Principal{p}
	} else {
		var err error
		if principals, err = h.allPrincipals(ctx); err != nil {
			return err
		}
	}
	dependents, err := h.secretDependents(ctx)
	if err != nil {
		return err
	}
	out.Secrets = []ExpiringSecret{}
	for _, p := range principals {
		ss, err := h.cfg.Store.FindSecrets(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.State(now) != berth.SecretActive || !until.IsZero() && s.Expires.After(until) {
				continue
			}
			conns := dependents[s.ID]
			if conns == nil {
				conns = []string{}
			}
			out.Secrets = append(out.Secrets, ExpiringSecret{Kind: "client_secret", Principal: p.Name, ID: s.ID, Hint: s.Hint, Description: s.Description,
				Created: s.Created, Expires: s.Expires, LastUsed: s.LastUsed,
				DaysLeft: int(s.Expires.Sub(now) / (24 * time.Hour)), Connections: conns})
		}
	}
	if q.Get("principal") == "" && h.cfg.Upstreams != nil {
		ups, err := h.cfg.Upstreams.FindUpstreams(ctx)
		if err != nil {
			return err
		}
		for _, u := range ups {
			if u.ExpiresAt == nil || !u.ExpiresAt.After(now) || !until.IsZero() && u.ExpiresAt.After(until) {
				continue
			}
			out.Secrets = append(out.Secrets, ExpiringSecret{Kind: "upstream", Upstream: u.Name, Username: u.Username,
				Created: u.Created, Expires: *u.ExpiresAt, DaysLeft: int(u.ExpiresAt.Sub(now) / (24 * time.Hour)), Connections: []string{}})
		}
	}
	slices.SortFunc(out.Secrets, func(a, b ExpiringSecret) int {
		return cmp.Or(a.Expires.Compare(b.Expires), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Upstream, b.Upstream), cmp.Compare(a.ID, b.ID))
	})
	return writeJSON(w, http.StatusOK, out)
}

// allPrincipals returns every principal, read a page at a time.
func (h *handler) allPrincipals(ctx context.Context) ([]berth.Principal, error) {
	var all []berth.Principal
	for p, err := range berth.AllPrincipals(ctx, h.cfg.Store, berth.PrincipalFilter{}) {
		if err != nil {
			return nil, err
		}
		all = append(all, p)
	}
	return all, nil
}

// secretDependents maps each secret id to the names of the secret service
// connections that authenticate with it, in name order.
func (h *handler) secretDependents(ctx context.Context) (map[string][]string, error) {
	conns, err := h.cfg.Store.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, c := range conns {
		if c.Auth == berth.ConnectionSecret && c.SecretID != "" {
			m[c.SecretID] = append(m[c.SecretID], c.Name)
		}
	}
	return m, nil
}

// removeSecret revokes a secret: it stops authenticating at once, and so do
// the refresh tokens obtained with it. It stays as a tombstone, so that a later
// use is reported as secret_revoked. Removing a removed secret changes
// nothing.
//
// DELETE /api/v1/principals/{name}/secrets/{id} → 200 with the secret, now
// revoked. Needs owner on registry; not_found when the principal has no secret
// with this id.
func (h *handler) removeSecret(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "removing a secret"); err != nil {
		return err
	}
	p, err := h.principalByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	id, err := berth.ParseSecretID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ss, err := h.cfg.Store.FindSecrets(ctx, p.ID)
	if err != nil {
		return err
	}
	var s *berth.Secret
	for i := range ss {
		if ss[i].ID == id {
			s = &ss[i]
		}
	}
	if s == nil {
		return berth.Errorf(berth.CodeNotFound, "principal %s has no secret with id %s", p.Name, id).
			WithHint("berth secret list %s shows the ids of its secrets", p.Name)
	}
	now := h.now()
	if s.Revoked == nil {
		if err := h.cfg.Store.RevokeSecret(ctx, s.ID, now); err != nil {
			return err
		}
		s.Revoked = &now
	}
	n, err := h.cfg.Store.RevokeRefreshTokensByCredential(ctx, s.ID, now)
	if err != nil {
		return err
	}
	h.changed(r, c, "secret removed", slog.String("principal", p.Name), slog.String("secret_id", s.ID),
		slog.String("hint", s.Hint), slog.Int("refresh_tokens_revoked", n))
	return writeJSON(w, http.StatusOK, RemovedSecret{Secret: secretView(p, *s, now), RefreshTokensRevoked: n})
}
