package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.AssertionStore = (*Store)(nil)

// RememberAssertion records key until expires, or finds it recorded and
// live, in one statement: of two racing callers (replicas included), one
// inserts.
func (s *Store) RememberAssertion(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	n, err := s.c.Write().Exec(ctx, `
		INSERT INTO assertion_replays (key, expires) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE assertion_replays.expires <= $3`,
		key, expires, now)
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	return n == 1, nil
}

// AssertionRemembered reports whether key is recorded and live at now.
func (s *Store) AssertionRemembered(ctx context.Context, key string, now time.Time) (bool, error) {
	var n int
	err := s.c.Read().QueryRow(ctx, `SELECT count(*) FROM assertion_replays WHERE key = $1 AND expires > $2`, key, now).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("find assertion: %w", err)
	}
	return n > 0, nil
}

// DeleteExpiredAssertions deletes the keys that expired before before.
func (s *Store) DeleteExpiredAssertions(ctx context.Context, before time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM assertion_replays WHERE expires < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("delete expired assertions: %w", err)
	}
	return int(n), nil
}
