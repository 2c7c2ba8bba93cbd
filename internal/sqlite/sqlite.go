package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlstore"
)

var _ berth.MetadataStore = (*DB)(nil)

// busyTimeout is how long a connection waits for a lock held by another process
// (or by this process's writer, for a reader during a checkpoint) before it
// fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// DB is a metadata store in one SQLite file. It is safe for concurrent use.
type DB struct {
	*sqlstore.Store // the queries shared with PostgreSQL

	path   string
	write  *sql.DB // one connection; every transaction begins IMMEDIATE
	read   *sql.DB // query-only connections
	writeQ *poolQ  // write, with its prepared statements
	readQ  *poolQ  // read, with its prepared statements

	// Prepared on the read pool: the manifest GET path, the hottest query.
	findManifestByDigest *sql.Stmt
	findManifestByTag    *sql.Stmt
	findBlobLink         *sql.Stmt // the blob GET path
}

// Open opens (creating when needed) the SQLite database at path, a file whose
// directory must exist, and brings its schema up to date. It refuses a database
// whose schema is newer than this build knows.
func Open(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db := &DB{path: abs}

	// The writer comes first: it switches the file to WAL and migrates it before
	// any reader looks at the schema.
	db.write, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			// FULL: a manifest PUT that was answered survives a power loss.
			"synchronous(FULL)",
		},
		"_txlock": {"immediate"},
		// A time.Time argument is bound as Unix microseconds, the column
		// encoding of every time (sqlstore.Time reads it back).
		"_time_integer_format": {"unix_micro"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	// SQLite allows one writer at a time; queueing writers on one connection in
	// database/sql (honouring each caller's context) is cheaper and fairer than
	// letting several connections spin on the file lock.
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	if err := db.setWAL(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	db.writeQ = newPoolQ(db.write)
	if err := sqlstore.Migrate(ctx, conn{db}, Dialect); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", abs, err)
	}

	db.read, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"query_only(1)",
		},
		"_time_integer_format": {"unix_micro"},
	}))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	// Opening a connection runs its pragmas; keep every one that was opened.
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(readers)
	db.read.SetMaxIdleConns(readers)
	db.read.SetConnMaxLifetime(0)
	db.read.SetConnMaxIdleTime(0)

	db.readQ = newPoolQ(db.read)
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	db.Store = sqlstore.New(Dialect, conn{db})
	return db, nil
}

// dsn returns the modernc.org/sqlite data source name for the file at abs. The
// path goes through a file: URI so that '?', '#' and '%' in it stay part of it.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// setWAL switches the file to WAL, which persists in the file, so readers need
// not ask again. Converting a new file takes an exclusive lock for which SQLite
// does not always call the busy handler, so when another process (or another
// DB in this one) is opening the same new file, setWAL retries until busyTimeout.
func (db *DB) setWAL(ctx context.Context) error {
	var waited time.Duration
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var mode string
		err := db.write.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		switch {
		case err == nil && mode == "wal":
			return nil
		case err == nil:
			return fmt.Errorf("open sqlite %s: journal mode is %q, not wal: the file system may not support WAL (network file systems do not); put the data folder on a local disk", db.path, mode)
		case !isBusy(err) || waited >= busyTimeout:
			return fmt.Errorf("open sqlite %s: set WAL journal mode: %w", db.path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("open sqlite %s: set WAL journal mode: %w", db.path, ctx.Err())
		case <-time.After(wait):
			waited += wait
		}
	}
}

func (db *DB) prepare(ctx context.Context) error {
	var err error
	db.findManifestByDigest, err = db.read.PrepareContext(ctx, `
		SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations, m.refs, m.created
		FROM repositories r
		JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = ? AND m.digest = ?`)
	if err != nil {
		return fmt.Errorf("prepare find manifest by digest: %w", err)
	}
	db.findManifestByTag, err = db.read.PrepareContext(ctx, `
		SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations, m.refs, m.created
		FROM repositories r
		JOIN tags t ON t.repo_id = r.id
		JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		WHERE r.name = ? AND t.name = ?`)
	if err != nil {
		return fmt.Errorf("prepare find manifest by tag: %w", err)
	}
	db.findBlobLink, err = db.read.PrepareContext(ctx, `
		SELECT l.size, l.created
		FROM repositories r JOIN blob_links l ON l.repo_id = r.id
		WHERE r.name = ? AND l.digest = ?`)
	if err != nil {
		return fmt.Errorf("prepare find blob link: %w", err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close releases the connections. It lets SQLite refresh its query-planner
// statistics first, as SQLite recommends for long-lived connections.
func (db *DB) Close() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.findManifestByDigest, db.findManifestByTag, db.findBlobLink} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if db.readQ != nil {
		errs = append(errs, db.readQ.close())
	}
	if db.writeQ != nil {
		errs = append(errs, db.writeQ.close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		if _, err := db.write.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, fmt.Errorf("optimize sqlite %s: %w", db.path, err))
		}
		errs = append(errs, db.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite %s: %w", db.path, err)
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits when fn
// returns nil; otherwise it rolls back and returns fn's error unchanged, so a
// *berth.Error keeps its code.
func (db *DB) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("%s: rollback: %w", op, rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

// Times are stored as Unix microseconds: exact for any time a registry meets,
// the zero time included, and the precision PostgreSQL keeps.

func toDB(t time.Time) int64 { return t.UnixMicro() }

func fromDB(us int64) time.Time { return time.UnixMicro(us).UTC() }

// repoID returns the id of the named repository, or ok false when it does not
// exist.
func repoID(ctx context.Context, q queryer, name string) (id int64, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, name).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("find repository %s: %w", name, err)
	}
	return id, true, nil
}

// ensureRepo returns the id of the named repository, creating it with the given
// creation time when it does not exist. tx must be a write transaction.
func ensureRepo(ctx context.Context, tx *sql.Tx, name string, created time.Time) (int64, error) {
	id, ok, err := repoID(ctx, tx, name)
	if err != nil || ok {
		return id, err
	}
	err = tx.QueryRowContext(ctx,
		`INSERT INTO repositories (name, created) VALUES (?, ?) RETURNING id`,
		name, toDB(created)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create repository %s: %w", name, err)
	}
	return id, nil
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
