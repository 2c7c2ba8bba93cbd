package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/berth-dev/berth"
)

// FindManifestDigests returns the digest of every manifest of repo, tagged or
// not, oldest first, then by digest.
func (db *DB) FindManifestDigests(ctx context.Context, repo string) ([]berth.Digest, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT m.digest FROM repositories r JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = ? ORDER BY m.created, m.digest`, repo)
	if err != nil {
		return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
	}
	defer rows.Close()
	ds := []berth.Digest{}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
		}
		ds = append(ds, berth.Digest(d))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
	}
	return ds, nil
}

// FindRefreshTokens returns every token of the principal, revoked and
// expired ones included, by Created then ID.
func (db *DB) FindRefreshTokens(ctx context.Context, principalID string) ([]berth.RefreshToken, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, hash, credential_id, pipeline_id, run, created, expires, revoked
		FROM refresh_tokens WHERE principal_id = ? ORDER BY created, id`, principalID)
	if err != nil {
		return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
	}
	defer rows.Close()
	ts := []berth.RefreshToken{}
	for rows.Next() {
		t := berth.RefreshToken{PrincipalID: principalID}
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Hash, &t.CredentialID, &t.PipelineID, &t.Run, &created, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
		}
		t.Created, t.Expires = fromDB(created), fromDB(expires)
		if revoked.Valid {
			r := fromDB(revoked.Int64)
			t.Revoked = &r
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
	}
	return ts, nil
}
