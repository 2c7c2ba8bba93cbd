// Package berth is the domain of the berth registry: its vocabulary and its
// rules, written once above every adapter. OCI content (repositories,
// manifests, blobs, uploads, digests); identities and their credentials
// (principals, client secrets, refresh tokens, access-token claims); roles,
// scopes and the access decision; the hash-chained audit log; and garbage
// collection over the store interfaces.
//
// This package imports the standard library only (a test checks it). Stores
// under internal/ persist what the rules here decide; they never decide
// themselves. Every refusal that reaches a user is an *Error with a stable Code
// from the table in codes.go, a Message that states the facts and a Hint that
// names the fix. Time and randomness are parameters, never read here.
package berth
