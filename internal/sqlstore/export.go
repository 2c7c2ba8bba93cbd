package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth"
)

// FindManifestDigests returns the digest of every manifest of repo, tagged or
// not, oldest first, then by digest.
func (s *Store) FindManifestDigests(ctx context.Context, repo string) ([]berth.Digest, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT m.digest FROM repositories r JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = $1 ORDER BY m.created, m.digest`, repo)
	ds, err := collect(rows, err, func(r Rows) (berth.Digest, error) {
		d, err := scanString(r)
		return berth.Digest(d), err
	})
	if err != nil {
		return nil, fmt.Errorf("find manifests of %s: %w", repo, err)
	}
	return ds, nil
}

// FindRefreshTokens returns every token of the principal, revoked and
// expired ones included, by Created then ID.
func (s *Store) FindRefreshTokens(ctx context.Context, principalID string) ([]berth.RefreshToken, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT id, hash, credential_id, pipeline_id, run, created, expires, revoked
		FROM refresh_tokens WHERE principal_id = $1 ORDER BY created, id`, principalID)
	ts, err := collect(rows, err, func(r Rows) (berth.RefreshToken, error) {
		t := berth.RefreshToken{PrincipalID: principalID}
		err := r.Scan(&t.ID, &t.Hash, &t.CredentialID, &t.PipelineID, &t.Run, Time(&t.Created), Time(&t.Expires), NullTime(&t.Revoked))
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("find refresh tokens of %s: %w", principalID, err)
	}
	return ts, nil
}
