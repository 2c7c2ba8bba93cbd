package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/sqlstore"
)

// rawDB opens path directly, beside the store, to look at or tamper with what
// the store wrote.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func countMigrations(t *testing.T, path string) int {
	t.Helper()
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// migrationFiles returns how many migration steps the package embeds: a
// database opened once has applied them all, each once.
func migrationFiles(t testing.TB) int {
	t.Helper()
	steps, err := sqlstore.Steps(sqlite.Dialect)
	if err != nil || len(steps) == 0 {
		t.Fatalf("list migrations: %v (%d steps)", err, len(steps))
	}
	return int(len(steps))
}

func execRaw(t *testing.T, path, query string) {
	t.Helper()
	if _, err := rawDB(t, path).Exec(query); err != nil {
		t.Fatal(err)
	}
}
