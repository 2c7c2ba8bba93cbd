// Package postgres is berth's metadata store on PostgreSQL: every store
// interface of berth.MetadataStore, for installations that run several berth
// replicas against one database. It passes the same storetest suite as the
// SQLite store, so either can stand in for the other.
//
// The schema lives in embedded migrations (migrations/NNNN_what.sql, numbered
// as the SQLite store's steps so a version means the same in both), applied
// by Open in one transaction under an advisory lock, so that replicas
// starting together migrate once. Identifiers and names are COLLATE "C", so
// that ordering is byte order whatever the database's locale. Every write
// that must see a row another transaction may change locks that row first
// (FOR KEY SHARE to keep it, FOR UPDATE to delete it), so the read-committed
// isolation PostgreSQL defaults to gives the same answers as SQLite's single
// writer: a push racing garbage collection, a secret created while its
// principal is deleted, two replicas appending to the audit chain.
//
// Errors are translated at this boundary by SQLSTATE, never by message text:
// a unique violation is conflict, a missing referenced row not_found where
// the contract says so; everything else is wrapped with what was being done.
//
// This package must never hold a rule: expiry, hashing, matching,
// authorization and audit chaining are package berth's; it only persists.
package postgres
