package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.PATStore = (*Store)(nil)

const patColumns = `id, principal_id, hint, hash, scopes, description, created, expires, last_used, revoked`

func scanPAT(row interface{ Scan(...any) error }) (berth.PersonalAccessToken, error) {
	var t berth.PersonalAccessToken
	var scopes string
	if err := row.Scan(&t.ID, &t.PrincipalID, &t.Hint, &t.Hash, &scopes, &t.Description, Time(&t.Created), Time(&t.Expires),
		NullTime(&t.LastUsed), NullTime(&t.Revoked)); err != nil {
		return t, err
	}
	ras, err := berth.ParseDockerScope(scopes)
	if err != nil {
		return t, fmt.Errorf("stored scopes of personal access token %s: %w", t.ID, err)
	}
	t.Scopes = ras
	return t, nil
}

func patScopes(ras []berth.ResourceActions) string {
	ss := make([]string, len(ras))
	for i, ra := range ras {
		ss[i] = ra.String()
	}
	return strings.Join(ss, " ")
}

// CreatePAT stores t.
func (s *Store) CreatePAT(ctx context.Context, t berth.PersonalAccessToken) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO personal_access_tokens (`+patColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.ID, t.PrincipalID, t.Hint, t.Hash, patScopes(t.Scopes), t.Description, t.Created, t.Expires, t.LastUsed, t.Revoked)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "the personal access token exists")
	}
	if err != nil {
		return fmt.Errorf("create personal access token: %w", err)
	}
	return nil
}

func (s *Store) findPAT(ctx context.Context, where, arg string) (berth.PersonalAccessToken, error) {
	t, err := scanPAT(s.c.Read().QueryRow(ctx, `SELECT `+patColumns+` FROM personal_access_tokens WHERE `+where+` = $1`, arg))
	if IsNoRows(err) {
		return t, berth.Errorf(berth.CodeNotFound, "no personal access token has the %s %s", where, arg).WithHint("berth token list")
	}
	if err != nil {
		return t, fmt.Errorf("find personal access token: %w", err)
	}
	return t, nil
}

// FindPATByHash returns the token whose hash is hash.
func (s *Store) FindPATByHash(ctx context.Context, hash string) (berth.PersonalAccessToken, error) {
	t, err := s.findPAT(ctx, "hash", hash)
	if berth.IsCode(err, berth.CodeNotFound) {
		return t, berth.Errorf(berth.CodeNotFound, "no personal access token has this value")
	}
	return t, err
}

// FindPATByID returns the token with id.
func (s *Store) FindPATByID(ctx context.Context, id string) (berth.PersonalAccessToken, error) {
	return s.findPAT(ctx, "id", id)
}

// FindPATs returns the principal's tokens by creation.
func (s *Store) FindPATs(ctx context.Context, principalID string) ([]berth.PersonalAccessToken, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT `+patColumns+` FROM personal_access_tokens WHERE principal_id = $1 ORDER BY created, id`, principalID)
	out, err := collect(rows, err, func(r Rows) (berth.PersonalAccessToken, error) { return scanPAT(r) })
	if err != nil {
		return nil, fmt.Errorf("find personal access tokens: %w", err)
	}
	return out, nil
}

// RevokePAT marks the token revoked, keeping an earlier revocation.
func (s *Store) RevokePAT(ctx context.Context, id string, at time.Time) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE personal_access_tokens SET revoked = COALESCE(revoked, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("revoke personal access token: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no personal access token has the id %s", id).WithHint("berth token list")
	}
	return nil
}

// RevokePATsOf revokes, in one statement, every token of the principal that
// is not revoked yet, and returns how many.
func (s *Store) RevokePATsOf(ctx context.Context, principalID string, at time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx, `UPDATE personal_access_tokens SET revoked = $2 WHERE principal_id = $1 AND revoked IS NULL`, principalID, at)
	if err != nil {
		return 0, fmt.Errorf("revoke the personal access tokens of %s: %w", principalID, err)
	}
	return int(n), nil
}

// TouchPAT records a use at at, never moving LastUsed back (uses are
// recorded concurrently and may arrive out of order).
func (s *Store) TouchPAT(ctx context.Context, id string, at time.Time) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE personal_access_tokens SET last_used = CASE WHEN last_used IS NULL OR last_used < $2 THEN $2 ELSE last_used END WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("record use of personal access token: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no personal access token has the id %s", id)
	}
	return nil
}
