package oauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// RevokePath is where token revocation (RFC 7009) is served.
const RevokePath = "/oauth2/revoke"

// RevokeHandler serves POST /oauth2/revoke, token revocation (RFC 7009), for
// refresh tokens: berth logout and docker-credential-berth erase call it, so
// that a login removed on the client no longer works on the server either.
//
// The token itself is the proof: a public client such as the berth CLI holds
// no secret, and whoever holds a refresh token may end it. A client that
// authenticates (client_secret_basic or _post) must be the token's principal,
// else nothing is revoked. As section 2.2 requires, an unknown or invalid
// token is answered 200 like a revoked one, so the answer tells nothing about
// which tokens exist. An access token is refused with unsupported_token_type
// (section 2.2.1): it is a short-lived signed JWT that expires by itself.
// Refusals are rendered as the token endpoint renders them.
type RevokeHandler struct {
	Tokens *TokenHandler
}

func (h RevokeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.Tokens.writeError(w, r, berth.Errorf(berth.CodeUnsupported, "token revocation answers POST (RFC 7009), not %s", berth.Truncate(r.Method, 20)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestSize)
	if err := h.revoke(r); err != nil {
		h.Tokens.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h RevokeHandler) revoke(r *http.Request) error {
	ctx := r.Context()
	p := h.Tokens.Provider
	if err := berth.RefuseQueryCredential(r.URL.Query()); err != nil {
		return err
	}
	f, err := postForm(r)
	if err != nil {
		return err
	}
	value := f.Get("token")
	if value == "" {
		return berth.Errorf(berth.CodeInvalid, "the revocation request names no token").
			WithHint("POST token=REFRESH_TOKEN to %s", RevokePath)
	}
	var caller *berth.Caller
	if _, _, present := r.BasicAuth(); present || f.Has("client_secret") {
		user, secret, err := clientCredentials(r, f)
		if err != nil {
			return err
		}
		if caller, err = p.AuthenticateClient(ctx, user, secret, SourceAddress(r)); err != nil {
			h.Tokens.auditRefused(r, err)
			return err
		}
	}
	v, err := berth.ParseRefreshTokenValue(value)
	if err != nil {
		if f.Get("token_type_hint") == "access_token" || strings.Count(value, ".") == 2 {
			return &oauthError{name: "unsupported_token_type", err: berth.Errorf(berth.CodeUnsupported,
				"berth does not revoke access tokens: they are signed JWTs that expire within minutes").
				WithHint("revoke the refresh token the access token came from, or remove the credential: berth secret remove PRINCIPAL SECRET_ID")}
		}
		return nil // not a token berth issued: nothing to revoke (section 2.2)
	}
	now := p.Now()
	t, err := p.Store.FindRefreshTokenByHash(ctx, v.Hash())
	switch {
	case berth.IsCode(err, berth.CodeNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("find the refresh token to revoke: %w", err)
	case caller != nil && caller.Actor.ID != t.PrincipalID:
		return nil // not this client's token: revoke nothing, say nothing
	case t.Revoked != nil:
		return nil
	}
	if err := p.Store.RevokeRefreshToken(ctx, t.ID, now); err != nil && !berth.IsCode(err, berth.CodeNotFound) {
		return fmt.Errorf("revoke refresh token %s: %w", t.ID, err)
	}
	// A person's CLI login (berth logout) ends its session too: the
	// tokens it issued stop with it, not when they expire.
	if sessionID, ok := berth.SessionIDOf(t.CredentialID); ok && p.People != nil {
		if err := p.People.EndSession(ctx, sessionID); err != nil && !berth.IsCode(err, berth.CodeNotFound) {
			return fmt.Errorf("end session %s: %w", sessionID, err)
		}
	}
	h.auditRevoked(ctx, r, t, now)
	return nil
}

// auditRevoked records the revocation of t.
func (h RevokeHandler) auditRevoked(ctx context.Context, r *http.Request, t berth.RefreshToken, now time.Time) {
	if h.Tokens.Audit == nil {
		return
	}
	e := berth.NewAuditEvent(ctx, berth.AuditAuthRevoke, "", nil)
	e.Time, e.ActorID, e.CredentialID, e.Source = now, t.PrincipalID, t.CredentialID, SourceAddress(r)
	if pr, err := h.Tokens.Provider.Store.FindPrincipalByID(ctx, t.PrincipalID); err == nil {
		e.Actor = pr.Name
	}
	e.Detail = map[string]string{"refresh_token_id": t.ID}
	h.Tokens.Audit.Record(e)
}
