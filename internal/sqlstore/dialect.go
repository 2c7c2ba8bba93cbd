package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// Dialect is what differs between two SQL engines, and only that. Each
// adapter builds its own (sqlite.Dialect, postgres.Dialect); everything else
// is written once in this package.
type Dialect struct {
	// Name is the engine's name as migration folders and messages use it:
	// "sqlite" or "postgres".
	Name string

	// Types maps the names a migration writes between double braces
	// ({{time}}) to this engine's DDL. Every name of the list in doc.go must
	// be present; a migration naming another fails to load.
	Types map[string]string

	// ForKeyShare, ForNoKeyUpdate and ForUpdate are appended to a SELECT
	// that reads a row a write transaction depends on (to keep it), is about
	// to change (but not its key) or to delete (to own it): " FOR KEY SHARE",
	// " FOR NO KEY UPDATE" and " FOR UPDATE" on PostgreSQL, empty on SQLite,
	// whose write transactions run one at a time.
	ForKeyShare, ForNoKeyUpdate, ForUpdate string
	// ForUpdateSkipLocked locks the rows a queue's consumer claims and
	// passes over those another consumer holds: " FOR UPDATE SKIP LOCKED"
	// on PostgreSQL, empty on SQLite.
	ForUpdateSkipLocked string

	// ZeroTime is what an optional time column (a delivery's next attempt,
	// "never" when zero) stores for the zero time: 0 on SQLite, the zero
	// time itself on PostgreSQL. Bind through Store.optTime, read through
	// OptTime.
	ZeroTime any

	// IsUniqueViolation reports whether err is the engine refusing a
	// duplicate primary key or unique value, judged by its error code.
	IsUniqueViolation func(err error) bool
	// IsForeignKeyViolation reports whether err is the engine refusing a row
	// whose foreign key names no row.
	IsForeignKeyViolation func(err error) bool
	// IsSerializationFailure reports whether err is a transaction that lost
	// a race and may be retried as a whole (SQLite's busy, PostgreSQL's
	// serialization failure and deadlock).
	IsSerializationFailure func(err error) bool

	// WritableCTE tells an engine that runs INSERT, UPDATE and DELETE in a
	// WITH clause, as parts of one statement (PostgreSQL): a write of
	// several rows then needs no transaction of its own, so one round trip.
	WritableCTE bool

	// Arrays tells an engine that binds a Go slice as an array and reads it
	// back with unnest or = ANY (PostgreSQL): a statement then writes or
	// checks a list of rows at once, in one round trip.
	Arrays bool

	// Audit is how the engine keeps the audit log (see AuditLayout).
	Audit AuditLayout

	// MigrationsTable creates schema_migrations when it does not exist.
	MigrationsTable string
	// LockMigrations, when set, runs first in the migration transaction and
	// makes concurrent migrations of the same schema wait (PostgreSQL's
	// advisory lock; SQLite's BEGIN IMMEDIATE needs none).
	LockMigrations func(ctx context.Context, tx Querier) error
	// FixHistory, when set, runs in the migration transaction after
	// MigrationsTable and before the recorded versions are read: it renumbers
	// steps that an older build recorded under another version.
	FixHistory func(ctx context.Context, tx Querier) error
}

// typeNames are the names every Dialect.Types must define; doc.go says what
// each stands for.
var typeNames = []string{"time", "bool", "bytes", "bigint", "integer", "text", "key", "id", "serial", "strict", "strict_norowid"}

// render replaces the {{name}}s of a migration with d's type names.
func (d *Dialect) render(name, ddl string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(ddl, "{{")
		if i < 0 {
			b.WriteString(ddl)
			return b.String(), nil
		}
		j := strings.Index(ddl[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("migration %s: unclosed {{", name)
		}
		key := ddl[i+2 : i+j]
		t, ok := d.Types[key]
		if !ok {
			return "", fmt.Errorf("migration %s: the %s dialect has no type {{%s}}", name, d.Name, key)
		}
		b.WriteString(ddl[:i])
		b.WriteString(t)
		ddl = ddl[i+j+2:]
	}
}

// check reports a Dialect that lacks something every engine must supply.
func (d *Dialect) check() error {
	for _, n := range typeNames {
		if _, ok := d.Types[n]; !ok {
			return fmt.Errorf("dialect %s: no type {{%s}}", d.Name, n)
		}
	}
	if d.Audit == 0 || d.IsUniqueViolation == nil || d.IsForeignKeyViolation == nil || d.IsSerializationFailure == nil || d.MigrationsTable == "" {
		return fmt.Errorf("dialect %s: incomplete", d.Name)
	}
	return nil
}

// ForUpdateOf returns d.ForUpdate restricted to the rows of one table of a
// join (by its name or alias): " FOR UPDATE OF m" on PostgreSQL, empty on
// SQLite.
func (d *Dialect) ForUpdateOf(table string) string {
	if d.ForUpdate == "" {
		return ""
	}
	return d.ForUpdate + " OF " + table
}
