package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestConnectionSettings checks that the DSN parameters reached SQLite: they are
// strings the driver parses, so a typo would otherwise pass unnoticed.
func TestConnectionSettings(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		pool   *sql.DB
		pragma string
		want   string
	}{
		{db.write, "journal_mode", "wal"},
		{db.write, "foreign_keys", "1"},
		{db.write, "busy_timeout", "5000"},
		{db.write, "synchronous", "1"}, // NORMAL: walSyncer syncs after each commit
		{db.write, "query_only", "0"},
		{db.read, "journal_mode", "wal"},
		{db.read, "busy_timeout", "5000"},
		{db.read, "query_only", "1"},
	} {
		var got string
		if err := tc.pool.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}

	// Writes begin IMMEDIATE: the write lock is held from BEGIN, so a second
	// writer waits at BEGIN rather than failing when it upgrades a read lock.
	tx, err := db.write.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", dsn(db.path, map[string][]string{"_pragma": {"busy_timeout(0)"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(t.Context(), "BEGIN IMMEDIATE"); !isBusy(err) {
		t.Errorf("BEGIN IMMEDIATE beside an open write transaction: %v, want SQLITE_BUSY", err)
	}

	// A read-pool connection refuses to write.
	if _, err := db.read.ExecContext(t.Context(), "DELETE FROM upload_sessions"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestIsUniqueViolation(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `INSERT INTO repositories (name, created) VALUES ('a', 0)`
	if _, err := db.write.ExecContext(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	_, err = db.write.ExecContext(t.Context(), q)
	if !isUniqueViolation(err) {
		t.Errorf("duplicate name: %v, want a unique violation", err)
	}
	_, err = db.write.ExecContext(t.Context(), `INSERT INTO blob_links (repo_id, digest, size, created) VALUES (999, 'd', 0, 0)`)
	if err == nil || isUniqueViolation(err) {
		t.Errorf("foreign key violation: %v, want an error that is not a unique violation", err)
	}
}
