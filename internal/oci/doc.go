// Package oci serves the OCI distribution-spec v1.1 API under /v2/.
//
// Requests are routed by one small parser into a route (repository names hold
// slashes); each handler implements one endpoint of the spec, cites its section,
// and returns an error that writeError renders in the spec's envelope. Handlers
// never write an error body themselves and never decide authorization or
// persistence rules: stores persist, the root package decides.
//
// Spec: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
package oci
