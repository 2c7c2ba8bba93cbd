package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// FindManifestDigests returns the digest of every manifest of repo, tagged or
// not, oldest first, then by digest.
func (db *DB) FindManifestDigests(ctx context.Context, repo string) ([]berth.Digest, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT m.digest FROM repositories r JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = $1 ORDER BY m.created, m.digest`, repo)
	if err != nil {
		return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (berth.Digest, error) {
		var d string
		err := r.Scan(&d)
		return berth.Digest(d), err
	})
	if err != nil {
		return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
	}
	if ds == nil {
		ds = []berth.Digest{}
	}
	return ds, nil
}

// FindRefreshTokens returns every token of the principal, revoked and
// expired ones included, by Created then ID.
func (db *DB) FindRefreshTokens(ctx context.Context, principalID string) ([]berth.RefreshToken, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, hash, credential_id, pipeline_id, run, created, expires, revoked
		FROM refresh_tokens WHERE principal_id = $1 ORDER BY created, id`, principalID)
	if err != nil {
		return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (berth.RefreshToken, error) {
		t := berth.RefreshToken{PrincipalID: principalID}
		err := r.Scan(&t.ID, &t.Hash, &t.CredentialID, &t.PipelineID, &t.Run, &t.Created, &t.Expires, &t.Revoked)
		t.Created, t.Expires, t.Revoked = utc(t.Created), utc(t.Expires), utcPtr(t.Revoked)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
	}
	if ts == nil {
		ts = []berth.RefreshToken{}
	}
	return ts, nil
}
