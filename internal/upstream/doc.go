// Package upstream is the client berth's pull-through cache uses to read
// another registry: manifests and blobs over the distribution API, with
// Docker token authentication, Basic authentication or none, as the
// upstream's challenge asks.
//
// It turns every failure into the one refusal a client of the cache sees
// (upstream_unreachable, upstream_auth_failed, upstream_rate_limited, or
// manifest_unknown and blob_unknown for content the upstream does not have),
// naming the upstream and quoting what it said. It never stores anything,
// never decides what is cached, and never puts a credential into a message,
// a log line or a URL.
package upstream
