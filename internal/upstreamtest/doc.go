// Package upstreamtest runs an upstream registry for tests of the
// pull-through cache: go-containerregistry's in-memory registry behind a
// small Docker token authentication front, on a loopback port, counting
// the requests that reach it. It can be stopped, made to refuse, to
// rate-limit or to hang, to test how the cache answers then. Tests only.
package upstreamtest
