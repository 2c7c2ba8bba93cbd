// Package oidctest is a test OpenID Connect issuer for berth's federation
// tests: an httptest server on a loopback port that serves a discovery
// document and a JWKS, signs ID tokens with RSA (RS256) keys it can rotate, and
// mints them in the exact claim shapes of GitHub Actions, GitLab CI, Azure
// Pipelines and Kubernetes service accounts, or broken on purpose (another key, an unknown kid, expired, for
// another audience). It counts its JWKS fetches, so tests can assert caching.
// A Company adds what a company's identity provider has for people: an
// authorization endpoint that signs a configured person (with groups) in at
// once, with PKCE, and a token endpoint for the code and refresh grants.
//
// It is for tests only: its keys are generated in memory, it trusts whatever
// it is asked to mint, and nothing outside _test.go files may import it.
package oidctest
