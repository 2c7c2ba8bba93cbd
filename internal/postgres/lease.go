package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lock is a cluster-wide lock: a PostgreSQL session advisory lock held on a
// connection of its own. PostgreSQL releases it when that connection ends,
// so a replica killed while holding it (SIGKILL, a lost node) frees it for
// the others as soon as the server notices the connection is gone.
type Lock struct {
	name string
	conn *pgx.Conn
	lost chan struct{}
	stop context.CancelFunc
	done sync.WaitGroup
}

// lockKeySQL turns a lock name into the 64-bit key of the lock, per schema:
// installations sharing a database do not exclude each other. (The
// migration lock uses the two-key form, a separate key space.)
const lockKeySQL = `hashtextextended(current_schema() || '/' || $1, 0)`

// lockProbe is how often a held Lock checks that its connection is alive.
const lockProbe = 2 * time.Second

// TryLock takes the lock called name in this schema if no other session
// holds it: ok is false when one does.
func (db *DB) TryLock(ctx context.Context, name string) (l *Lock, ok bool, err error) {
	return db.lock(ctx, name, `SELECT pg_try_advisory_lock(`+lockKeySQL+`)`)
}

// Lock waits for the lock called name in this schema and takes it.
func (db *DB) Lock(ctx context.Context, name string) (*Lock, error) {
	l, _, err := db.lock(ctx, name, `SELECT true FROM pg_advisory_lock(`+lockKeySQL+`)`)
	return l, err
}

func (db *DB) lock(ctx context.Context, name, sql string) (*Lock, bool, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: connect to %s: %w", name, db.host, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, sql, name).Scan(&ok); err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", name, err)
		}
		return nil, false, nil
	}
	pctx, stop := context.WithCancel(context.Background())
	l := &Lock{name: name, conn: conn, lost: make(chan struct{}), stop: stop}
	l.done.Go(func() { l.probe(pctx) })
	return l, true, nil
}

// probe closes lost when the lock's connection fails: PostgreSQL has then
// released the lock, and another replica may take it.
func (l *Lock) probe(ctx context.Context) {
	t := time.NewTicker(lockProbe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, lockProbe)
		err := l.conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			close(l.lost)
			return
		}
	}
}

// Lost is closed when the lock was lost with its connection: whoever holds
// it must stop what it guards.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release gives the lock back and closes its connection.
func (l *Lock) Release() {
	l.stop()
	l.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKeySQL+`)`, l.name)
	l.conn.Close(ctx)
}

// RunExclusive runs fn unless another replica runs the job called name in
// this schema: ran is false when one does. fn's context is cancelled when
// the lock is lost (its connection failed), so that two replicas never run
// the job at once for longer than the probe interval.
func (db *DB) RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (ran bool, err error) {
	l, ok, err := db.TryLock(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	defer l.Release()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.Lost():
			cancel()
		case <-fctx.Done():
		}
	}()
	if err := fn(fctx); err != nil {
		if ctx.Err() == nil && fctx.Err() != nil {
			return true, fmt.Errorf("%s stopped: the lock was lost with its database connection: %w", name, err)
		}
		return true, err
	}
	return true, nil
}
