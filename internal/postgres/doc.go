// Package postgres is berth's metadata store on PostgreSQL, for
// installations that run several berth replicas against one database, and
// what those replicas share besides the metadata.
//
// The queries and the schema of the store interfaces are package sqlstore's,
// written once for SQLite and PostgreSQL; this package holds PostgreSQL's
// part of them: Dialect (timestamptz, boolean and bytea columns, identifiers
// COLLATE "C" so that ordering is byte order whatever the database's locale,
// rows locked FOR KEY SHARE or FOR UPDATE by the write transactions that
// depend on them so that read committed gives the same answers as SQLite's
// single writer, migrations serialised by an advisory lock, errors
// classified by SQLSTATE) and the pgx pool the shared store runs on
// directly, keeping pgx's statement cache and binary protocol.
//
// What only PostgreSQL offers stays here, behind the interfaces it already
// has: notifications between replicas (LISTEN/NOTIFY), the commit lock and
// leases (advisory locks), and the sealed signing keys, cluster secrets and
// attempt limits of migration 0008.
//
// This package must never hold a rule: expiry, hashing, matching,
// authorization and audit chaining are package berth's; it only persists.
package postgres
