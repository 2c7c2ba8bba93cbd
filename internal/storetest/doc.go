// Package storetest is the one suite every berth.MetadataStore passes: SQLite
// now, PostgreSQL next, each calling Run from its own tests with a function that
// opens an empty store.
//
// Each subtest checks one sentence of the contracts in blob.go and manifest.go of
// package berth, on a fresh store. Assertions are on reason codes
// (berth.ErrorCode), never on message text.
//
// Time. Stores never read the clock; the suite passes every time explicitly.
// All times it passes are whole milliseconds in UTC, and it compares the times a
// store returns with time.Equal, so the location a store returns is irrelevant
// and a store must keep at least millisecond precision (SQLite keeps
// microseconds, as PostgreSQL's timestamptz does). "Before t" is strict: a
// record created exactly at t is not before t.
//
// Where a contract sentence leaves a choice open, the suite settles it, so that
// every store answers alike:
//   - manifest_blob_unknown names the first missing digest in its Detail under
//     "digest" (what the OCI error envelope shows), besides its message;
//   - FindManifest returns the References the manifest was pushed with (in any
//     order);
//   - a manifest's Subject is not a reference: a referrer may arrive before its
//     subject;
//   - an upload session does not create its repository; a blob link or a
//     manifest does, and a refused push creates nothing;
//   - a store serves concurrent callers without failing on its own locks, and a
//     duplicate upload id under concurrency gives exactly one success.
//
// This package must never hold a rule of its own: what it checks is what the
// interfaces state, so that a store passing it can be swapped for another.
package storetest
