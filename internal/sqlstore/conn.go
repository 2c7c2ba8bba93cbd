package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Querier runs statements. Each engine's adapter implements it over its own
// driver: database/sql on SQLite, pgx on PostgreSQL (which keeps pgx's
// statement cache and binary protocol on the hot paths).
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows; the caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement expected to return at most one row; its
	// Scan returns an error wrapping sql.ErrNoRows when there is none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is a result being read, as *sql.Rows and pgx.Rows both offer it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is one row of a result, or the error that stands for it.
type Row interface {
	Scan(dest ...any) error
}

// Tx is a write transaction.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Conn is an engine's connection to its database, as its adapter opened it.
type Conn interface {
	// Read returns the querier for reads outside a transaction (SQLite's
	// query-only pool, PostgreSQL's pool).
	Read() Querier
	// Write returns the querier for one statement that writes, outside a
	// transaction.
	Write() Querier
	// Begin begins a write transaction: BEGIN IMMEDIATE on SQLite's one
	// write connection, so that writers queue rather than fail upgrading a
	// lock; a read-committed transaction on PostgreSQL, where the queries
	// lock the rows they depend on (Dialect.ForKeyShare, ForUpdate).
	Begin(ctx context.Context) (Tx, error)
	// BeginRead begins a read-only transaction that sees one snapshot from
	// its first statement to its end: a read transaction of SQLite's WAL, a
	// repeatable-read one on PostgreSQL. The caller rolls it back.
	BeginRead(ctx context.Context) (Tx, error)
	// Changed announces, from a write that may have made a read kept by
	// Store.CacheReads stale (a tag moved, a manifest, tag, blob link or
	// repository deleted), that the other processes sharing the database
	// must drop what they keep, when q's transaction commits. Engines
	// whose counter sees every commit of every process (SQLite's) do
	// nothing.
	Changed(ctx context.Context, q Querier) error
}

// IsNoRows reports whether err is a Row's "no row" answer, on either engine.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// InTx runs fn in a write transaction of c and commits when fn returns nil;
// otherwise it rolls back and returns fn's error unchanged, so that a
// *berth.Error keeps its code. op names the operation in wrapped errors.
func InTx(ctx context.Context, c Conn, op string, fn func(tx Querier) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		// Rollback with a context of its own: a cancelled ctx must not leave
		// the connection in an aborted transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rbErr := tx.Rollback(rctx); rbErr != nil && !errors.Is(rbErr, ErrTxDone) {
			return errors.Join(err, fmt.Errorf("%s: rollback: %w", op, rbErr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

// ErrTxDone is what a Tx returns from Rollback or Commit when it has ended
// already; adapters translate their driver's equivalent to it.
var ErrTxDone = sql.ErrTxDone

// pointRead returns ctx without its cancellation, for a read of one row by
// its key on a hot path (a manifest or blob GET): it takes microseconds, so
// cancelling it saves nothing, while a cancellable context costs
// database/sql a goroutine per query, to watch it. Its values stay.
func pointRead(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
