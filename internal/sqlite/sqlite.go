package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
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
	write  *sql.DB    // one connection; every transaction begins IMMEDIATE
	read   *sql.DB    // query-only connections
	writeQ *poolQ     // write, with its prepared statements
	sync   *walSyncer // makes the write connection's commits durable
	readQ  *poolQ     // read, with its prepared statements
	cache  *walIndex  // the read cache's counter; nil: no read cache
}

// Open opens (creating when needed) the SQLite database at path, a file whose
// directory must exist, and brings its schema up to date. It refuses a database
// whose schema is newer than this build knows.
func Open(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// A new database is created by its owner for its owner alone (it holds
	// secret hashes), before SQLite would create it with the umask's mode:
	// SQLite gives its -wal and -shm files the database file's mode.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	db := &DB{path: abs, sync: newWALSyncer(abs)}

	// The writer comes first: it switches the file to WAL and migrates it before
	// any reader looks at the schema.
	db.write, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			// NORMAL: a commit does not fsync the WAL; walSyncer does, after
			// the commit and for every commit made meanwhile, before the
			// write returns (group commit, see durable.go). So a manifest PUT
			// that was answered survives a power loss.
			"synchronous(NORMAL)",
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
	db.Store = sqlstore.New(Dialect, conn{db})
	if db.cache = openWALIndex(ctx, db); db.cache != nil {
		db.Store.CacheReads(db.cache.counter)
	}
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

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close releases the connections. It lets SQLite refresh its query-planner
// statistics first, as SQLite recommends for long-lived connections.
func (db *DB) Close() error {
	var errs []error
	if err := db.cache.close(); err != nil {
		errs = append(errs, err)
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
	errs = append(errs, db.sync.close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite %s: %w", db.path, err)
	}
	return nil
}
