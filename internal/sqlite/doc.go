// Package sqlite is berth's default metadata store: every store interface of
// berth.MetadataStore in one SQLite file, through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// The queries and the schema are package sqlstore's, written once for
// SQLite and PostgreSQL; this package holds only SQLite's part: Dialect (its
// type names, its error codes, no row locks) and the connections the shared
// store runs on. It keeps two pools on the same file in WAL mode: one
// connection for writes, whose transactions begin IMMEDIATE so that
// concurrent writers queue instead of failing on a lock upgrade, and several
// query-only connections for reads, which WAL lets run beside the writer.
// Each pool prepares a statement once and keeps it, so the hot reads (the
// manifest and blob GETs) are not parsed again. Times are bound as Unix
// microseconds (the DSN's _time_integer_format). Writes are group-committed
// (durable.go): a commit does not fsync, and every write returns only once
// an fsync of the WAL begun after its commit has ended, one fsync serving
// every writer that committed meanwhile, so a write that returned survives a
// power loss.
//
// A DB passes the storetest suite, as every metadata store must. Like
// sqlstore, this package only persists: it never decides anything the
// domain decides.
package sqlite
