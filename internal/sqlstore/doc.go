// Package sqlstore is berth's one SQL implementation of the metadata store
// interfaces: every query and every mapping from rows to domain types is
// written here once, and runs unchanged on SQLite (internal/sqlite) and on
// PostgreSQL (internal/postgres).
//
// # Contract
//
// An engine's adapter opens its database and hands New two things: a
// *Dialect, which holds only what really differs between the engines (the
// type names of the migrations, the row-locking clauses, the audit log's
// table layout, how migrations are serialised, how a driver error is
// classified), and a Conn, through which every statement runs (Read for
// reads outside a transaction, Write for one statement that writes, Begin
// for a write transaction: BEGIN IMMEDIATE on SQLite's one write
// connection, a read-committed transaction on PostgreSQL; BeginRead for a
// read-only snapshot). Both adapters run Migrate, the one ordered list of
// schema steps, before serving.
//
// Queries are written once, in PostgreSQL's spelling, which SQLite also
// reads: $1, $2… placeholders (modernc.org/sqlite binds $N to the Nth
// argument), ON CONFLICT … DO, RETURNING, count(*) FILTER (WHERE …). A row
// lock is the dialect's suffix (d.ForKeyShare, d.ForUpdate): empty on
// SQLite, whose one writer already serialises every write transaction.
// Times are bound as time.Time (the SQLite adapter stores Unix microseconds,
// PostgreSQL timestamptz; both keep microseconds) and scanned through Time or
// NullTime, which read either engine's column and return UTC. Booleans are
// Go bools on both. A byte string is bound through NonNil, so that an empty
// one stays a zero-length value rather than NULL.
//
// Like the adapters before it, this package only persists. It never decides
// what the domain decides: it validates no names or digests, never reads the
// clock (callers set Created), and holds no expiry, authorization,
// audit-chaining or garbage-collection policy. It imports no database
// driver: powers only one engine has (PostgreSQL's LISTEN/NOTIFY, advisory
// locks, sealed keys, leases) stay in that engine's adapter, behind the
// interfaces they already have.
//
// # How to add a table
//
//  1. Add the next step to migrations/: NNNN_what.sql, written once with the
//     dialect's type names ({{time}}, {{bool}}, {{bytes}}, {{bigint}},
//     {{integer}}, {{text}}, {{key}} for byte-ordered identifiers, {{id}}
//     and {{serial}} for generated keys, {{strict}} and {{strict_norowid}}
//     after a table's closing parenthesis). Only when the DDL itself must
//     differ, put the step under migrations/sqlite/ and migrations/postgres/
//     instead, with the same number and name. A released step is never
//     edited; a change is a new step.
//  2. Write the store methods in a file of this package named after the
//     aggregate (users.go), as methods of *Store, through s.c.Read(),
//     s.c.Write() or s.inTx; classify errors with s.d.IsUniqueViolation and
//     friends, never by message text.
//  3. Add the interface to berth.MetadataStore (or a smaller one) and its
//     compile-time check (var _ berth.UserStore = (*Store)(nil)); both
//     adapters embed *Store, so they gain the methods without a line.
//  4. Add its cases to internal/storetest; go test ./internal/sqlite
//     ./internal/postgres runs them on both engines.
//  5. If berth migrate must copy it, add it to the export/import of the
//     migrate command (internal/cli) and its test.
package sqlstore
