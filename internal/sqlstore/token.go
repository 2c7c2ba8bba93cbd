package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.RefreshTokenStore = (*Store)(nil)

// CreateRefreshToken stores t; conflict when its ID or Hash exists.
func (s *Store) CreateRefreshToken(ctx context.Context, t berth.RefreshToken) error {
	_, err := s.c.Write().Exec(ctx, `
		INSERT INTO refresh_tokens (id, hash, principal_id, credential_id, pipeline_id, run, created, expires, revoked)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.Hash, t.PrincipalID, t.CredentialID, t.PipelineID, t.Run, t.Created, t.Expires, t.Revoked)
	switch {
	case s.d.IsUniqueViolation(err):
		// Which one is not said: a hash collision is not worth a message.
		return berth.Errorf(berth.CodeConflict, "a refresh token with id %s or the same hash already exists", t.ID)
	case err != nil:
		return fmt.Errorf("create refresh token %s: %w", t.ID, err)
	}
	return nil
}

// FindRefreshTokenByHash returns the token whose hash is hash, revoked and
// expired ones included, or not_found.
func (s *Store) FindRefreshTokenByHash(ctx context.Context, hash string) (berth.RefreshToken, error) {
	t := berth.RefreshToken{Hash: hash}
	err := s.c.Read().QueryRow(ctx, `
		SELECT id, principal_id, credential_id, pipeline_id, run, created, expires, revoked
		FROM refresh_tokens WHERE hash = $1`, hash).
		Scan(&t.ID, &t.PrincipalID, &t.CredentialID, &t.PipelineID, &t.Run, Time(&t.Created), Time(&t.Expires), NullTime(&t.Revoked))
	switch {
	case IsNoRows(err):
		return berth.RefreshToken{}, berth.Errorf(berth.CodeNotFound, "no refresh token has this hash")
	case err != nil:
		return berth.RefreshToken{}, fmt.Errorf("find refresh token by hash: %w", err)
	}
	return t, nil
}

// RevokeRefreshToken marks the token revoked at the given time, or returns
// not_found; a revoked token keeps its first revocation time.
func (s *Store) RevokeRefreshToken(ctx context.Context, id string, at time.Time) error {
	n, err := s.c.Write().Exec(ctx,
		`UPDATE refresh_tokens SET revoked = coalesce(revoked, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("revoke refresh token %s: %w", id, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no refresh token has id %s", id)
	}
	return nil
}

// RevokeRefreshTokensByCredential revokes the credential's tokens that are
// not revoked yet and returns how many.
func (s *Store) RevokeRefreshTokensByCredential(ctx context.Context, credentialID string, at time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx,
		`UPDATE refresh_tokens SET revoked = $2 WHERE credential_id = $1 AND revoked IS NULL`, credentialID, at)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of credential %s: %w", credentialID, err)
	}
	return int(n), nil
}

// RevokeRefreshTokensByPrincipal revokes the principal's tokens that are not
// revoked yet and returns how many.
func (s *Store) RevokeRefreshTokensByPrincipal(ctx context.Context, principalID string, at time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx,
		`UPDATE refresh_tokens SET revoked = $2 WHERE principal_id = $1 AND revoked IS NULL`, principalID, at)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of principal %s: %w", principalID, err)
	}
	return int(n), nil
}

// DeleteExpiredRefreshTokens removes the tokens that expired strictly before
// the given time and returns how many.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM refresh_tokens WHERE expires < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return int(n), nil
}
