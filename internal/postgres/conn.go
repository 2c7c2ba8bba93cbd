package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/berth-dev/berth/internal/sqlstore"
)

// Dialect is PostgreSQL's part of the shared SQL store: timestamptz, boolean
// and bytea columns, identifiers COLLATE "C" (byte order whatever the
// database's locale), rows locked FOR KEY SHARE or FOR UPDATE by the write
// transactions that depend on them (read committed, PostgreSQL's default),
// migrations serialised by an advisory lock, and errors classified by
// SQLSTATE.
var Dialect = &sqlstore.Dialect{
	Name: "postgres",
	Types: map[string]string{
		"time":           "timestamptz",
		"bool":           "boolean",
		"bytes":          "bytea",
		"bigint":         "bigint",
		"integer":        "integer",
		"text":           "text",
		"key":            `text COLLATE "C"`,
		"id":             "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		"serial":         "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		"strict":         "",
		"strict_norowid": "",
	},
	ForKeyShare:            " FOR KEY SHARE",
	ForNoKeyUpdate:         " FOR NO KEY UPDATE",
	ForUpdate:              " FOR UPDATE",
	ForUpdateSkipLocked:    " FOR UPDATE SKIP LOCKED",
	ZeroTime:               time.Time{},
	WritableCTE:            true,
	Arrays:                 true,
	Audit:                  sqlstore.AuditRows,
	IsUniqueViolation:      isUniqueViolation,
	IsForeignKeyViolation:  isForeignKeyViolation,
	IsSerializationFailure: isSerializationFailure,
	MigrationsTable: `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			name    text    NOT NULL,
			applied timestamptz NOT NULL DEFAULT now()
		)`,
	LockMigrations: lockMigrations,
}

// migrateLockClass is the first key of the advisory lock that serialises
// migrations; the second is a hash of the schema's name, so installations in
// different schemas of one database do not wait for each other.
const migrateLockClass = 0x62657274 // "bert"

// lockMigrations takes the transaction-level advisory lock of the current
// schema: replicas starting at once queue on it.
func lockMigrations(ctx context.Context, tx sqlstore.Querier) error {
	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("read current schema: %w", err)
	}
	if schema == nil {
		return fmt.Errorf("no schema of the search_path exists: create it (CREATE SCHEMA name) or set search_path in the connection string to one that does")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrateLockClass, *schema); err != nil {
		return fmt.Errorf("lock schema %s for migration: %w", *schema, err)
	}
	return nil
}

// SQLSTATE codes this package translates.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// hasCode reports whether err is PostgreSQL refusing with the SQLSTATE code.
func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

func isUniqueViolation(err error) bool { return hasCode(err, uniqueViolation) }

func isForeignKeyViolation(err error) bool { return hasCode(err, foreignKeyViolation) }

func isSerializationFailure(err error) bool {
	return hasCode(err, serializationFailure) || hasCode(err, deadlockDetected)
}

// conn is the shared store's view of the pool. A write transaction that
// announced a change (Changed) moves ch, the read cache's counter, once it
// has committed; other writes leave it, so that the entries this replica
// keeps outlive its pushes, audit records and sessions.
type conn struct {
	pool *pgxpool.Pool
	ch   *changes
}

func (c conn) Read() sqlstore.Querier  { return pgxQ{c.pool} }
func (c conn) Write() sqlstore.Querier { return pgxQ{c.pool} }

func (c conn) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pgxTx{pgxQ: pgxQ{tx}, tx: tx, ch: c.ch}, nil
}

func (c conn) BeginRead(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	return &pgxTx{pgxQ: pgxQ{tx}, tx: tx}, nil
}

// pgxQ runs statements through pgx, which prepares each once per connection
// and keeps it (pgx's default statement cache).
type pgxQ struct{ q querier }

func (p pgxQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (p pgxQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := p.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (p pgxQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return p.q.QueryRow(ctx, query, args...)
}

// pgxTx is a transaction, used by one goroutine. ch, set for a write
// transaction, moves when one that announced a change (Changed) commits, or
// when its commit's outcome is unknown.
type pgxTx struct {
	pgxQ
	tx      pgx.Tx
	ch      *changes
	changed bool
}

func (t *pgxTx) Commit(ctx context.Context) error {
	if t.ch != nil && t.changed {
		defer t.ch.moved()
	}
	return t.tx.Commit(ctx)
}

func (t *pgxTx) Rollback(ctx context.Context) error {
	err := t.tx.Rollback(ctx)
	if errors.Is(err, pgx.ErrTxClosed) {
		return sqlstore.ErrTxDone
	}
	return err
}
