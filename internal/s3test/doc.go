// Package s3test runs a real S3-compatible service, versitygw on loopback,
// for the tests that need one: internal/s3's own (one Shared server for the
// package), the /v2/ handler's redirects, berth migrate, replicas sharing a
// bucket, and the benchmark. It is imported by tests only and never by the
// binary, and it never imports internal/s3, whose tests use it.
package s3test
