package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-dev/berth"
)

// RevokeLeakedRequest is the body of POST /api/v1/secrets/revoke-leaked: a
// client secret's value, as a scanner found it.
type RevokeLeakedRequest struct {
	Value string `json:"value"`
}

// RevokedLeaked is the answer of POST /api/v1/secrets/revoke-leaked.
type RevokedLeaked struct {
	Principal string `json:"principal"`
	SecretID  string `json:"secret_id"`
	Hint      string `json:"hint"`
	// AlreadyRevoked is true when the secret had been removed before; its
	// refresh tokens are revoked again all the same.
	AlreadyRevoked       bool      `json:"already_revoked"`
	Revoked              time.Time `json:"revoked_at"`
	RefreshTokensRevoked int       `json:"refresh_tokens_revoked"`
}

// revokeLeaked revokes the client secret whose value is presented, as
// removeSecret does (the secret becomes a tombstone and the refresh tokens
// obtained with it stop working), for a caller who holds the value but not
// the principal's name or the secret's id: a scanner that found it in a
// repository or a log.
//
// POST /api/v1/secrets/revoke-leaked {"value": "brt_…"} → 200. Needs owner on
// registry, as removing a secret does. A value without the client secret
// format is invalid (secret_invalid's message, which never quotes it); a
// well-formed value berth does not know is not_found, saying nothing more.
func (h *handler) revokeLeaked(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "revoking a leaked secret"); err != nil {
		return err
	}
	var req RevokeLeakedRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if berth.IsPATValue(req.Value) {
		return h.revokeLeakedPAT(w, r, c, req.Value)
	}
	if err := berth.CheckSecretFormat(req.Value); err != nil {
		e := berth.AsError(err)
		return berth.Errorf(berth.CodeInvalid, "%s", e.Message).
			WithHint("send the whole brt_… value as found; berth scan finds and checks them")
	}
	s, err := h.cfg.Store.FindSecretByHash(ctx, h.cfg.Hasher.Hash(req.Value))
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "berth knows no client secret with this value").
			WithHint("it may belong to another berth server, or its principal was deleted")
	}
	if err != nil {
		return err
	}
	p, err := h.cfg.Store.FindPrincipalByID(ctx, s.PrincipalID)
	if err != nil {
		return err
	}
	if err := c.MayRevokeAsLeaked(s.ID, "client secret '"+s.Hint+"…' of "+p.Name, "berth secret remove "+p.Name+" "+s.ID); err != nil {
		return berth.AsError(err).WithDetail("principal", p.Name).WithDetail("secret_id", s.ID)
	}
	now := h.now()
	already := s.Revoked != nil
	if !already {
		if err := h.cfg.Store.RevokeSecret(ctx, s.ID, now); err != nil {
			return err
		}
		s.Revoked = &now
	}
	n, err := h.cfg.Store.RevokeRefreshTokensByCredential(ctx, s.ID, now)
	if err != nil {
		return err
	}
	h.changed(r, c, "leaked secret revoked", slog.String("principal", p.Name), slog.String("secret_id", s.ID),
		slog.String("hint", s.Hint), slog.Bool("already_revoked", already), slog.Int("refresh_tokens_revoked", n))
	return writeJSON(w, http.StatusOK, RevokedLeaked{Principal: p.Name, SecretID: s.ID, Hint: s.Hint,
		AlreadyRevoked: already, Revoked: *s.Revoked, RefreshTokensRevoked: n})
}

// revokeLeakedPAT revokes the personal access token whose value is found,
// as berth token revoke does.
func (h *handler) revokeLeakedPAT(w http.ResponseWriter, r *http.Request, c *berth.Caller, value string) error {
	ctx := r.Context()
	t, err := h.cfg.Store.FindPATByHash(ctx, berth.PATHash(value))
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "berth knows no personal access token with this value").
			WithHint("it may belong to another berth server, or its person was deleted")
	} else if err != nil {
		return err
	}
	p, err := h.cfg.Store.FindPrincipalByID(ctx, t.PrincipalID)
	if err != nil {
		return err
	}
	if err := c.MayRevokeAsLeaked(t.CredentialID(), "personal access token '"+t.Hint+"…' of "+p.Name, "berth token revoke "+t.ID); err != nil {
		return berth.AsError(err).WithDetail("principal", p.Name).WithDetail("token_id", t.ID)
	}
	already := t.Revoked != nil
	if !already {
		if err := h.cfg.Store.RevokePAT(ctx, t.ID, h.now()); err != nil {
			return err
		}
		if t, err = h.cfg.Store.FindPATByID(ctx, t.ID); err != nil {
			return err
		}
	}
	h.changed(r, c, "leaked personal access token revoked", slog.String("principal", p.Name), slog.String("token_id", t.ID),
		slog.String("hint", t.Hint), slog.Bool("already_revoked", already))
	return writeJSON(w, http.StatusOK, RevokedLeaked{Principal: p.Name, SecretID: t.ID, Hint: t.Hint, AlreadyRevoked: already, Revoked: *t.Revoked})
}
