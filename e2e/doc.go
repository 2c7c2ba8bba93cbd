// Package e2e holds end-to-end tests that drive a real berth binary with real
// OCI clients: skopeo, oras, crane and go-containerregistry, and a kill -9
// crash test. auth_test.go logs the clients in as a service principal made
// with the berth CLI, checks the refusals they print and searches the server
// log for every secret and token used; oidc_test.go checks OpenID discovery
// and the JWKS against issued tokens; federation_test.go runs a GitHub Actions
// job (a test OIDC issuer and a stand-in of GitHub's token request endpoint)
// that logs in with berth login --connection and pushes with skopeo.
//
// TestMain builds ./cmd/berth once into a temporary directory; each test starts
// its own server on a free 127.0.0.1 port with a fresh data directory.
//
// A test whose client tool (skopeo, oras) is missing skips, unless BERTH_E2E=1
// is set, when a missing tool, or a missing ./cmd/berth, is a failure. CI sets
// BERTH_E2E=1; .ci/run installs the pinned tools into
// ${BERTH_TOOLS:-~/.cache/berth-tools}/bin, which the tests search after PATH.
//
// Other knobs: BERTH_E2E_BIN uses an already built binary instead of building
// one; BERTH_E2E_SERVER=distribution runs the same tests against Debian's
// docker-registry (CNCF Distribution 2.8), for comparison, with the checks of
// features distribution lacks (the referrers API) left out.
package e2e
