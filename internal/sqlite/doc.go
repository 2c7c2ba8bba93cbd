// Package sqlite is berth's default metadata store: repositories, blob links,
// manifests, tags, upload sessions, principals, client secrets, role
// assignments, refresh tokens and the audit log in one SQLite file, through the
// pure-Go modernc.org/sqlite driver (no cgo).
//
// A DB implements berth.MetadataStore and passes the storetest suite, as every
// metadata store must. It keeps two connection pools on the same file in WAL
// mode: one connection for writes, whose transactions begin IMMEDIATE so that
// concurrent writers queue instead of failing on a lock upgrade, and several
// query-only connections for reads, which WAL lets run beside the writer. The
// schema lives in migrations/, embedded, applied in order at Open and recorded in
// schema_migrations.
//
// This package only persists. It enforces the referential checks the store
// interfaces state (a manifest's references exist, a tag names a manifest), each
// inside one transaction, and translates driver errors into berth codes by their
// SQLite result code. It never decides anything the domain decides: it does not
// validate names or digests, never reads the clock (callers set Created), and
// holds no expiry, authorization or garbage-collection policy.
package sqlite
