package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.AssertionStore = (*DB)(nil)

// RememberAssertion records key until expires, or finds it recorded and
// live, in one statement: of two racing callers, one inserts.
func (db *DB) RememberAssertion(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, `
		INSERT INTO assertion_replays (key, expires) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE assertion_replays.expires <= ?`,
		key, toDB(expires), toDB(now))
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	return n == 1, nil
}

// DeleteExpiredAssertions deletes the keys that expired before before.
func (db *DB) DeleteExpiredAssertions(ctx context.Context, before time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM assertion_replays WHERE expires < ?`, toDB(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired assertions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired assertions: %w", err)
	}
	return int(n), nil
}
