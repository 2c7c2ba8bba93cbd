package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.RefreshTokenStore = (*DB)(nil)

// CreateRefreshToken stores t; conflict when its ID or Hash exists.
func (db *DB) CreateRefreshToken(ctx context.Context, t berth.RefreshToken) error {
	var revoked *int64
	if t.Revoked != nil {
		r := toDB(*t.Revoked)
		revoked = &r
	}
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO refresh_tokens (id, hash, principal_id, credential_id, pipeline_id, run, created, expires, revoked)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.PrincipalID, t.CredentialID, t.PipelineID, t.Run, toDB(t.Created), toDB(t.Expires), revoked)
	switch {
	case isUniqueViolation(err):
		// Which one is not said: a hash collision is not worth a message.
		return berth.Errorf(berth.CodeConflict, "a refresh token with id %s or the same hash already exists", t.ID)
	case err != nil:
		return fmt.Errorf("create refresh token %s: %w", t.ID, err)
	}
	return nil
}

// FindRefreshTokenByHash returns the token whose hash is hash, revoked and
// expired ones included, or not_found.
func (db *DB) FindRefreshTokenByHash(ctx context.Context, hash string) (berth.RefreshToken, error) {
	t := berth.RefreshToken{Hash: hash}
	var created, expires int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, `
		SELECT id, principal_id, credential_id, pipeline_id, run, created, expires, revoked
		FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.PrincipalID, &t.CredentialID, &t.PipelineID, &t.Run, &created, &expires, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.RefreshToken{}, berth.Errorf(berth.CodeNotFound, "no refresh token has this hash")
	case err != nil:
		return berth.RefreshToken{}, fmt.Errorf("find refresh token by hash: %w", err)
	}
	t.Created, t.Expires = fromDB(created), fromDB(expires)
	if revoked.Valid {
		r := fromDB(revoked.Int64)
		t.Revoked = &r
	}
	return t, nil
}

// RevokeRefreshToken marks the token revoked at the given time, or returns
// not_found; a revoked token keeps its first revocation time.
func (db *DB) RevokeRefreshToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE refresh_tokens SET revoked = coalesce(revoked, ?) WHERE id = ?`, toDB(at), id)
	if err != nil {
		return fmt.Errorf("revoke refresh token %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke refresh token %s: %w", id, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no refresh token has id %s", id)
	}
	return nil
}

// RevokeRefreshTokensByCredential revokes the credential's tokens that are not
// revoked yet and returns how many.
func (db *DB) RevokeRefreshTokensByCredential(ctx context.Context, credentialID string, at time.Time) (int, error) {
	n, err := db.execRefreshTokens(ctx,
		`UPDATE refresh_tokens SET revoked = ? WHERE credential_id = ? AND revoked IS NULL`, toDB(at), credentialID)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of credential %s: %w", credentialID, err)
	}
	return n, nil
}

// RevokeRefreshTokensByPrincipal revokes the principal's tokens that are not
// revoked yet and returns how many.
func (db *DB) RevokeRefreshTokensByPrincipal(ctx context.Context, principalID string, at time.Time) (int, error) {
	n, err := db.execRefreshTokens(ctx,
		`UPDATE refresh_tokens SET revoked = ? WHERE principal_id = ? AND revoked IS NULL`, toDB(at), principalID)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens of principal %s: %w", principalID, err)
	}
	return n, nil
}

// DeleteExpiredRefreshTokens removes the tokens that expired strictly before
// the given time and returns how many.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := db.execRefreshTokens(ctx, `DELETE FROM refresh_tokens WHERE expires < ?`, toDB(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return n, nil
}

// execRefreshTokens runs one writing statement and returns the rows it changed.
func (db *DB) execRefreshTokens(ctx context.Context, query string, args ...any) (int, error) {
	res, err := db.write.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
