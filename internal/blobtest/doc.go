// Package blobtest is the one test suite every blob backend passes: Run checks, for
// a store that implements both berth.BlobStore and berth.UploadStore, each contract
// sentence written in blob.go, with random content, sha256 and sha512, empty blobs,
// failing readers and concurrent writers.
//
// The suite asserts on reason codes (berth.ErrorCode), never on message text, and
// only on what the interfaces promise: a behaviour a single backend chooses (file
// layout, temp files, locking strategy) belongs in that backend's own tests. It must
// never depend on a particular backend, on timing, or on the network.
package blobtest
