package api

import (
	"log/slog"
	"net/http"
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
	lifetime, err := berth.ParseLifetime(req.ExpiresIn, h.cfg.MaxSecretLifetime)
	if err != nil {
		if e := berth.AsError(err); e != nil {
			e.WithDetail("max_lifetime", berth.FormatLifetime(h.cfg.MaxSecretLifetime))
		}
		return err
	}
	s, v, err := berth.NewSecret(h.rand, h.cfg.Hasher, p.ID, h.now(), lifetime, req.Description)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.CreateSecret(ctx, s); err != nil {
		return err
	}
	h.changed(r, c, "secret added", slog.String("principal", p.Name), slog.String("secret_id", s.ID),
		slog.String("hint", s.Hint), slog.Time("expires_at", s.Expires))
	return writeJSON(w, http.StatusCreated, NewSecret{ID: s.ID, Principal: p.Name, Hint: s.Hint, Value: v.Reveal(),
		Description: s.Description, Created: s.Created, Expires: s.Expires})
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
