package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlstore"
)

var _ berth.MetadataStore = (*DB)(nil)

// DB is a metadata store in one PostgreSQL schema (the first of the
// connection's search_path). It is safe for concurrent use, and several DBs,
// in one process or many, may share the schema.
type DB struct {
	*sqlstore.Store // the queries shared with SQLite

	pool    *pgxpool.Pool
	host    string   // for messages: the server, never the password
	changes *changes // the read cache's counter
}

// Option changes how Open connects.
type Option func(*pgxpool.Config)

// WithMaxConns bounds the connections the DB holds open (by default the
// DSN's pool_max_conns, else the larger of 4 and the number of CPUs).
func WithMaxConns(n int32) Option {
	return func(c *pgxpool.Config) {
		if n > 0 {
			c.MaxConns = n
		}
	}
}

// Open connects to the database dsn names, a postgres:// URL or a libpq
// key=value string as pgx reads them (search_path=SCHEMA selects a schema
// other than the server's default; pool_max_conns and the other pool_
// parameters size the pool), and brings its schema up to date. It refuses a
// schema newer than this build knows. Statements are prepared once per
// connection and cached (pgx's default mode), so the hot queries are not
// parsed again.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN with its password redacted.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	db := &DB{host: fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database), changes: &changes{now: time.Now, start: time.Now()}}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", db.host, err)
	}
	c := conn{db.pool, db.changes}
	if err := sqlstore.Migrate(ctx, c, Dialect); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("migrate postgres %s: %w", db.host, err)
	}
	db.Store = sqlstore.New(Dialect, c)
	db.Store.CacheReads(db.changes.counter)
	return db, nil
}

// Close waits for the connections in use to be released and closes them all.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Pool returns the connection pool, for what shares the database without
// being a store (notifications, leases).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Times are timestamptz, which keeps microseconds; what comes back is UTC.

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// querier is what *pgxpool.Pool and pgx.Tx share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
