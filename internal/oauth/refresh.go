package oauth

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// RefreshTokens issues and redeems refresh tokens. A refresh token is bound to
// the principal and the credential (a secret id, or a service connection) it
// was obtained with; only its SHA-256 is stored.
//
// A refresh token is not rotated when it is redeemed: docker's credential
// helpers keep the token they got at login and send it again for every access
// token, so rotation would log them out. It stays valid until it expires or is
// revoked (RevokeRefreshTokensByCredential when its secret is removed,
// RevokeRefreshTokensByPrincipal when the principal is deleted).
type RefreshTokens struct {
	Store berth.RefreshTokenStore
	// Rand supplies token values and ids: crypto/rand.Reader in production.
	Rand io.Reader
	// Lifetime is how long a new token lives; berth.DefaultRefreshTokenLifetime
	// when zero.
	Lifetime time.Duration

	mu sync.Mutex // serialises reads of Rand, which may be a seeded test source
}

// Issue creates a refresh token for the principal and credential at now, and
// returns its value (to be sent to the client once) and its record. It expires
// after Lifetime, or at notAfter when that is earlier and not zero: pass the
// expiry of the secret it came from, so that the token does not outlive it.
func (r *RefreshTokens) Issue(ctx context.Context, principalID, credentialID string, now, notAfter time.Time) (berth.RefreshTokenValue, berth.RefreshToken, error) {
	return r.IssueFor(ctx, berth.RefreshToken{PrincipalID: principalID, CredentialID: credentialID}, now, notAfter)
}

// IssueFor is Issue for a token bound to what bound names: its PrincipalID
// and CredentialID, and for a federated login its PipelineID and Run. Its
// other fields are ignored.
func (r *RefreshTokens) IssueFor(ctx context.Context, bound berth.RefreshToken, now, notAfter time.Time) (berth.RefreshTokenValue, berth.RefreshToken, error) {
	principalID, credentialID := bound.PrincipalID, bound.CredentialID
	lifetime := r.Lifetime
	if lifetime <= 0 {
		lifetime = berth.DefaultRefreshTokenLifetime
	}
	expires := now.Add(lifetime)
	if !notAfter.IsZero() && notAfter.Before(expires) {
		expires = notAfter
	}
	if !expires.After(now) {
		return berth.RefreshTokenValue{}, berth.RefreshToken{}, fmt.Errorf("issue refresh token: the credential %s expires at %v, not after now", credentialID, notAfter)
	}
	r.mu.Lock()
	value, err := berth.NewRefreshTokenValue(r.Rand)
	var id string
	if err == nil {
		id, err = newUUID(r.Rand)
	}
	r.mu.Unlock()
	if err != nil {
		return berth.RefreshTokenValue{}, berth.RefreshToken{}, fmt.Errorf("issue refresh token: %w", err)
	}
	t := berth.RefreshToken{
		ID: id, Hash: value.Hash(), PrincipalID: principalID, CredentialID: credentialID,
		PipelineID: bound.PipelineID, Run: bound.Run, Created: now, Expires: expires,
	}
	if err := r.Store.CreateRefreshToken(ctx, t); err != nil {
		return berth.RefreshTokenValue{}, berth.RefreshToken{}, fmt.Errorf("issue refresh token: %w", err)
	}
	return value, t, nil
}

// Redeem returns the stored record of the refresh token value, or
// refresh_token_invalid when the value is not a refresh token, is unknown, was
// revoked or has expired; the message says which, and when, and never quotes
// the value.
//
// Redeem does not check that the principal is enabled and the credential still
// live: the caller must (it holds the identity rules), before it issues an
// access token for t.PrincipalID, and answer with their codes
// (principal_disabled, secret_revoked, secret_expired, …).
func (r *RefreshTokens) Redeem(ctx context.Context, value string, now time.Time) (berth.RefreshToken, error) {
	v, err := berth.ParseRefreshTokenValue(value)
	if err != nil {
		return berth.RefreshToken{}, err
	}
	// The lookup is by hash, so its timing tells nothing about stored values.
	t, err := r.Store.FindRefreshTokenByHash(ctx, v.Hash())
	switch {
	case berth.IsCode(err, berth.CodeNotFound):
		return berth.RefreshToken{}, berth.Errorf(berth.CodeRefreshTokenInvalid,
			"the refresh token is unknown: this registry did not issue it, or deleted it after it expired").
			WithHint("run berth login again to get a new refresh token")
	case err != nil:
		return berth.RefreshToken{}, fmt.Errorf("redeem refresh token: %w", err)
	}
	if err := t.Check(now); err != nil {
		return berth.RefreshToken{}, err
	}
	return t, nil
}

// newUUID returns a random (version 4) UUID read from r.
func newUUID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
