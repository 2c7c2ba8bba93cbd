// Package s3test runs a real S3-compatible service, versitygw on loopback,
// for the tests of packages other than internal/s3 that need one: the /v2/
// handler's redirects, berth migrate, replicas sharing a bucket, and the
// benchmark. It is imported by tests only and never by the binary.
package s3test
