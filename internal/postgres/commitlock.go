package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/berth-dev/berth"
)

var _ berth.CommitLocker = (*CommitLocker)(nil)

// DefaultCommitLockConns bounds the connections a CommitLocker holds at once
// unless told otherwise: as many blob commits of one replica can be in their
// critical section together; more wait for a connection.
const DefaultCommitLockConns = 16

// CommitLocker is a berth.CommitLocker shared by every process on this
// schema: per digest, a session advisory lock, pg_advisory_lock_shared for a
// commit and pg_advisory_lock for garbage collection, on a key derived from
// the schema and the digest (lockKeySQL; a hash collision between two
// digests only makes one wait for the other).
//
// The bytes it guards are written and deleted outside the database (on disk
// or S3), so the lock is a session lock on a connection held, idle and out of
// any transaction, until unlock: a transaction-scoped lock would leave a
// transaction open across the blob operation, where an
// idle_in_transaction_session_timeout would end it. When unlock cannot
// confirm the release, the connection is closed, which releases every lock it
// held. A replica that dies while holding a lock frees it with its
// connection.
//
// Its connections come from a pool of their own, never the store's: a holder
// still needs the store's connections to write the link, so taking lock
// connections from the same pool could leave every connection held by a
// commit waiting for another.
type CommitLocker struct {
	pool *pgxpool.Pool
	host string
}

// CommitLocker returns the commit locker of this schema, holding at most
// maxConns connections (DefaultCommitLockConns when 0). Close it after use.
// It connects only when a lock is first taken.
func (db *DB) CommitLocker(maxConns int32) (*CommitLocker, error) {
	cfg := db.pool.Config()
	if maxConns <= 0 {
		maxConns = DefaultCommitLockConns
	}
	cfg.MaxConns, cfg.MinConns = maxConns, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("commit locks on %s: %w", db.host, err)
	}
	return &CommitLocker{pool: pool, host: db.host}, nil
}

// Close closes the locker's connections once every lock is released.
func (l *CommitLocker) Close() { l.pool.Close() }

// LockShared holds d shared: a blob of digest d is being committed.
func (l *CommitLocker) LockShared(ctx context.Context, d berth.Digest) (func(), error) {
	return l.lock(ctx, d, "pg_advisory_lock_shared", "pg_advisory_unlock_shared")
}

// Lock holds d exclusively: garbage collection is deleting blob d.
func (l *CommitLocker) Lock(ctx context.Context, d berth.Digest) (func(), error) {
	return l.lock(ctx, d, "pg_advisory_lock", "pg_advisory_unlock")
}

// commitLockName names the lock of d among the locks of the schema.
func commitLockName(d berth.Digest) string { return "blob " + d.String() }

func (l *CommitLocker) lock(ctx context.Context, d berth.Digest, lockFn, unlockFn string) (func(), error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock blob %s: connect to %s: %w", d, l.host, err)
	}
	name := commitLockName(d)
	if _, err := conn.Exec(ctx, `SELECT `+lockFn+`(`+lockKeySQL+`)`, name); err != nil {
		// Stopped waiting (ctx ended) or failed: whether the server granted
		// the lock meanwhile is unknown, and ending the session releases it.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Conn().Close(cctx)
		cancel()
		conn.Release()
		return nil, fmt.Errorf("lock blob %s: %w", d, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var released bool
			err := conn.QueryRow(ctx, `SELECT `+unlockFn+`(`+lockKeySQL+`)`, name).Scan(&released)
			if err != nil || !released {
				// Not released, or not held any more (the session was
				// reset): a closed session holds nothing.
				_ = conn.Conn().Close(ctx)
			}
			conn.Release() // a closed connection leaves the pool
		})
	}, nil
}
