package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/berth-dev/berth/internal/sqlstore"
)

// Dialect is SQLite's part of the shared SQL store: plain SQL types in STRICT
// tables, no row locks (one write connection, every transaction BEGIN
// IMMEDIATE, serialises writers), and errors classified by SQLite's extended
// result codes.
var Dialect = &sqlstore.Dialect{
	Name: "sqlite",
	Types: map[string]string{
		"time":           "INTEGER", // Unix microseconds (the DSN's _time_integer_format)
		"bool":           "INTEGER", // 0 or 1
		"bytes":          "BLOB",
		"bigint":         "INTEGER",
		"integer":        "INTEGER",
		"text":           "TEXT",
		"key":            "TEXT", // SQLite compares text by bytes
		"id":             "INTEGER PRIMARY KEY",
		"serial":         "INTEGER PRIMARY KEY AUTOINCREMENT",
		"strict":         " STRICT",
		"strict_norowid": " STRICT, WITHOUT ROWID",
	},
	ZeroTime:               int64(0),
	Audit:                  sqlstore.AuditBlocks,
	IsUniqueViolation:      isUniqueViolation,
	IsForeignKeyViolation:  isForeignKeyViolation,
	IsSerializationFailure: isBusy,
	MigrationsTable: `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name    TEXT NOT NULL
		) STRICT`,
	// Builds before the shared migration list numbered the assertion step 8,
	// which is now PostgreSQL's cluster step (nothing on SQLite).
	FixHistory: func(ctx context.Context, tx sqlstore.Querier) error {
		_, err := tx.Exec(ctx, `
			UPDATE schema_migrations SET version = 9, name = '0009_assertions.sql'
			WHERE version = 8 AND name = '0008_assertions.sql'`)
		return err
	},
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate primary
// key or unique value, judged by its extended result code.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// isForeignKeyViolation reports whether err is SQLite refusing a row whose
// foreign key names no row.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// isBusy reports whether err is SQLite failing to get a lock.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// conn is the shared store's view of the two pools.
type conn struct{ db *DB }

func (c conn) Read() sqlstore.Querier  { return c.db.readQ }
func (c conn) Write() sqlstore.Querier { return durableQ{c.db.writeQ, c.db.sync} }

// Changed does nothing: the read cache's counter, the wal-index's, moves
// at every commit of every process.
func (conn) Changed(context.Context, sqlstore.Querier) error { return nil }

func (c conn) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := c.db.write.BeginTx(ctx, nil) // IMMEDIATE: the DSN's _txlock
	if err != nil {
		return nil, err
	}
	t := newTxQ(tx, c.db.writeQ)
	t.sync = c.db.sync
	return t, nil
}

func (c conn) BeginRead(ctx context.Context) (sqlstore.Tx, error) {
	// WAL: the transaction's snapshot is taken at its first read.
	tx, err := c.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return newTxQ(tx, c.db.readQ), nil
}

// maxStmts bounds the statements a pool keeps prepared. Every query text of
// the store is a constant or built from a few optional clauses, so the
// bound is only a guard.
const maxStmts = 512

// poolQ runs statements on a pool, each prepared once and kept: SQLite
// parses a statement in about as long as it runs a small one, so the
// manifest and blob GETs read through statements prepared before.
type poolQ struct {
	db     *sql.DB
	stmts  sync.Map // query text → *sql.Stmt
	mu     sync.Mutex
	n      int  // statements kept, under mu
	closed bool // under mu
	run    run  // over db and stmt, made once: a method value allocates
}

func newPoolQ(db *sql.DB) *poolQ {
	p := &poolQ{db: db}
	p.run = run{db, p.stmt}
	return p
}

// cached returns query prepared, or nil when it has not been.
func (p *poolQ) cached(query string) *sql.Stmt {
	if s, ok := p.stmts.Load(query); ok {
		return s.(*sql.Stmt)
	}
	return nil
}

// stmt returns query prepared, preparing it when it has not been, or nil
// when it cannot be kept (then the caller runs the text, which reports any
// error in it). It must not be called inside a transaction of the write
// pool, whose one connection the transaction holds.
func (p *poolQ) stmt(ctx context.Context, query string) *sql.Stmt {
	if s := p.cached(query); s != nil {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.cached(query); s != nil {
		return s
	}
	if p.closed || p.n >= maxStmts {
		return nil
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.stmts.Store(query, s)
	p.n++
	return s
}

func (p *poolQ) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	p.stmts.Range(func(q, s any) bool {
		errs = append(errs, s.(*sql.Stmt).Close())
		p.stmts.Delete(q)
		return true
	})
	p.n, p.closed = 0, true
	return errors.Join(errs...)
}

// prepareLater prepares queries in the background, for the transactions
// that run them next: a transaction holds the write pool's one connection,
// so what it runs for the first time cannot be prepared while it runs.
func (p *poolQ) prepareLater(queries []string) {
	if len(queries) == 0 {
		return
	}
	go func() {
		for _, q := range queries {
			p.stmt(context.Background(), q)
		}
	}()
}

func (p *poolQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return p.run.Exec(ctx, query, args...)
}

func (p *poolQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return p.run.Query(ctx, query, args...)
}

func (p *poolQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return p.run.QueryRow(ctx, query, args...)
}

// txQ runs statements in a transaction, through its pool's statements
// prepared before (outside any transaction), else as text; what it ran as
// text is prepared once it ends.
type txQ struct {
	tx     *sql.Tx
	stmts  *poolQ
	missed []string
	run    run        // over tx and prepared
	sync   *walSyncer // a write transaction's: Commit returns once it is durable
}

func newTxQ(tx *sql.Tx, stmts *poolQ) *txQ {
	t := &txQ{tx: tx, stmts: stmts}
	t.run = run{tx, t.prepared}
	return t
}

// cached returns query prepared, or nil, noting it to prepare later.
func (t *txQ) cached(query string) *sql.Stmt {
	s := t.stmts.cached(query)
	if s == nil && !slices.Contains(t.missed, query) {
		t.missed = append(t.missed, query)
	}
	return s
}

// prepared returns query's prepared statement for this transaction, or nil.
func (t *txQ) prepared(ctx context.Context, query string) *sql.Stmt {
	if s := t.cached(query); s != nil {
		return t.tx.StmtContext(ctx, s)
	}
	return nil
}

func (t *txQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return t.run.Exec(ctx, query, args...)
}

func (t *txQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return t.run.Query(ctx, query, args...)
}

func (t *txQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return t.run.QueryRow(ctx, query, args...)
}

func (t *txQ) Commit(context.Context) error {
	err := t.tx.Commit()
	t.stmts.prepareLater(t.missed)
	t.missed = nil
	if err == nil && t.sync != nil {
		err = t.sync.durable()
	}
	return err
}

func (t *txQ) Rollback(context.Context) error {
	err := t.tx.Rollback()
	t.stmts.prepareLater(t.missed)
	t.missed = nil
	return err
}

// run runs a statement through its prepared form when prepared has one,
// else as text on text (a pool or a transaction).
type run struct {
	text interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	prepared func(ctx context.Context, query string) *sql.Stmt
}

func (r run) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var (
		res sql.Result
		err error
	)
	if s := r.prepared(ctx, query); s != nil {
		res, err = s.ExecContext(ctx, args...)
	} else {
		res, err = r.text.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (r run) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if s := r.prepared(ctx, query); s != nil {
		rows, err = s.QueryContext(ctx, args...)
	} else {
		rows, err = r.text.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (r run) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if s := r.prepared(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return r.text.QueryRowContext(ctx, query, args...)
}

// sqlRows adapts *sql.Rows, whose Close error Err also reports.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
