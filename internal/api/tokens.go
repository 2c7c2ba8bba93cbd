package api

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/berth-dev/berth"
)

// CreateTokenRequest is the body of POST /api/v1/tokens.
type CreateTokenRequest struct {
	// Scopes are resource scopes in the token endpoint's grammar
	// ("repository:team/app:pull,push", "registry:catalog:*").
	Scopes []string `json:"scopes"`
	// ExpiresIn is the lifetime as berth.ParseLifetime reads it; empty
	// means 30 days, or auth.max_token_lifetime when shorter.
	ExpiresIn   string `json:"expires_in,omitempty"`
	Description string `json:"description,omitempty"`
}

// Token is a personal access token as the API shows it: its value only in
// the answer that creates it.
type Token struct {
	ID          string     `json:"id"`
	Principal   string     `json:"principal"`
	Hint        string     `json:"hint"`
	Value       string     `json:"value,omitempty"`
	Scopes      []string   `json:"scopes"`
	Description string     `json:"description,omitempty"`
	Created     time.Time  `json:"created_at"`
	Expires     time.Time  `json:"expires_at"`
	LastUsed    *time.Time `json:"last_used_at,omitempty"`
	Revoked     *time.Time `json:"revoked_at,omitempty"`
}

// TokenList is the answer of GET /api/v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

func tokenView(p string, t berth.PersonalAccessToken) Token {
	scopes := make([]string, len(t.Scopes))
	for i, ra := range t.Scopes {
		scopes[i] = ra.String()
	}
	return Token{ID: t.ID, Principal: p, Hint: t.Hint, Scopes: scopes, Description: t.Description,
		Created: t.Created, Expires: t.Expires, LastUsed: t.LastUsed, Revoked: t.Revoked}
}

func (h *handler) routeTokens() {
	h.handle("POST /api/v1/tokens", h.createToken)
	h.handle("GET /api/v1/tokens", h.listTokens)
	h.handle("DELETE /api/v1/tokens/{id}", h.revokeToken)
}

// createToken makes a personal access token for the calling person.
//
// POST /api/v1/tokens {"scopes", "expires_in", "description"} → 201 with the
// token and its value, shown this once. The caller must be a person (a
// principal of kind user); each scope must be within what they hold now
// (role_missing names the first that is not); the lifetime is capped by
// auth.max_token_lifetime.
func (h *handler) createToken(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := c.MayCreatePATs(); err != nil {
		return err
	}
	var req CreateTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	scopes, err := berth.ParsePATScopes(req.Scopes)
	if err != nil {
		return err
	}
	max := h.cfg.MaxTokenLifetime
	if max <= 0 {
		max = berth.DefaultMaxPATLifetime
	}
	lifetime := min(berth.DefaultPATLifetime, max)
	if req.ExpiresIn != "" {
		if lifetime, err = berth.ParseLifetime(req.ExpiresIn, max); err != nil {
			return err
		}
	}
	idx, err := h.accessIndex(ctx, c)
	if err != nil {
		return err
	}
	for _, ra := range scopes {
		granted := idx.DockerActions(ra.Type, ra.Name, ra.Actions)
		for _, a := range ra.Actions {
			if slices.Contains(granted, a) || (a == berth.DockerActionAll && ra.Type == berth.ResourceRepository && len(granted) == 3) {
				continue
			}
			if ra.Type == berth.ResourceRepository && a != berth.DockerActionAll {
				return idx.DecideDocker(a, ra.Name).Err()
			}
			return berth.Errorf(berth.CodeRoleMissing, "principal %s does not hold %s, so no token of theirs may", c.Actor.Name, ra).
				WithHint("name only scopes you hold: berth access check --action pull --repository NAME")
		}
	}
	t, value, err := berth.NewPAT(h.rand, c.Actor.ID, scopes, req.Description, h.now(), lifetime, max)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.CreatePAT(ctx, t); err != nil {
		return err
	}
	h.changed(r, c, "personal access token created", slog.String("principal", c.Actor.Name), slog.String("token_id", t.ID), slog.String("hint", t.Hint))
	view := tokenView(c.Actor.Name, t)
	view.Value = value
	return writeJSON(w, http.StatusCreated, view)
}

// listTokens lists the caller's personal access tokens, revoked ones
// included: GET /api/v1/tokens.
func (h *handler) listTokens(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ts, err := h.cfg.Store.FindPATs(r.Context(), c.Actor.ID)
	if err != nil {
		return err
	}
	out := TokenList{Tokens: make([]Token, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenView(c.Actor.Name, t))
	}
	return writeJSON(w, http.StatusOK, out)
}

// revokeToken revokes one of the caller's tokens (an owner of registry may
// revoke anyone's): DELETE /api/v1/tokens/{id} → 200 with the token.
// Clients using it are refused at their next request (secret_revoked).
func (h *handler) revokeToken(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	id, err := berth.ParsePATID(r.PathValue("id"))
	if err != nil {
		return err
	}
	t, err := h.cfg.Store.FindPATByID(ctx, id)
	owner := c.Actor.Name
	if err == nil && t.PrincipalID != c.Actor.ID {
		// Another person's token: only an owner of registry may revoke it,
		// and to anyone else it is as unknown as a token that does not
		// exist, so that ids cannot be probed.
		if h.requireOwner(ctx, c, "revoking another person's token") != nil {
			err = berth.Errorf(berth.CodeNotFound, "you hold no personal access token %s", id)
		} else {
			p, perr := h.cfg.Store.FindPrincipalByID(ctx, t.PrincipalID)
			if perr != nil {
				return perr
			}
			owner = p.Name
		}
	}
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "you hold no personal access token %s", id).WithHint("berth token list shows your tokens")
	} else if err != nil {
		return err
	}
	if err := h.cfg.Store.RevokePAT(ctx, t.ID, h.now()); err != nil {
		return err
	}
	t, err = h.cfg.Store.FindPATByID(ctx, t.ID)
	if err != nil {
		return err
	}
	noteTarget(r, owner)
	h.changed(r, c, "personal access token revoked", slog.String("principal", owner), slog.String("token_id", t.ID))
	return writeJSON(w, http.StatusOK, tokenView(owner, t))
}
