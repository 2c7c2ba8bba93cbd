package berth_test

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth"
)

// TestRefuseCrossSite walks what browsers send: a change is refused when
// Sec-Fetch-Site says another site (a sibling subdomain included), or, when
// it is missing, when Origin is not the registry's; reads, clients that
// send neither header and the registry's own pages pass.
func TestRefuseCrossSite(t *testing.T) {
	for _, tc := range []struct {
		what, method, site, origin, public string
		tls, refused                       bool
	}{
		{what: "a CLI's change", method: "POST"},
		{what: "a page of another site", method: "POST", site: "cross-site", origin: "https://evil.example", refused: true},
		{what: "a sibling subdomain", method: "DELETE", site: "same-site", origin: "https://evil.registry.example", refused: true},
		{what: "the registry's own page", method: "POST", site: "same-origin", origin: "http://registry.example"},
		{what: "an address typed by the user", method: "PUT", site: "none"},
		{what: "a read from another site", method: "GET", site: "cross-site", origin: "https://evil.example"},
		{what: "a preflight", method: "OPTIONS", site: "cross-site", origin: "https://evil.example"},
		{what: "an old browser, another origin", method: "PATCH", origin: "https://evil.example", refused: true},
		{what: "an old browser, a sandboxed page", method: "POST", origin: "null", refused: true},
		{what: "an old browser, this host", method: "POST", origin: "http://registry.example"},
		{what: "an old browser, this host over TLS", method: "POST", origin: "https://registry.example", tls: true},
		{what: "an old browser, the public url behind a proxy", method: "POST", origin: "https://berth.example", public: "https://berth.example/"},
		{what: "a modern browser, the public url behind a proxy", method: "POST", site: "cross-site", origin: "https://berth.example", public: "https://berth.example/"},
		// net/http's rule compares the Origin's host alone when
		// Sec-Fetch-Site is missing (browsers of before 2023 only): the
		// registry's host over another scheme passes.
		{what: "an old browser, http origin on a TLS request", method: "POST", origin: "http://registry.example", tls: true},
		{what: "an old browser, another host with this one as a path", method: "POST", origin: "https://evil.example/registry.example", refused: true},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://registry.example/v2/team/app/blobs/uploads/", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.site != "" {
				r.Header.Set("Sec-Fetch-Site", tc.site)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			err := berth.RefuseCrossSite(r, tc.public)
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !berth.IsCode(err, berth.CodeCrossSiteRefused) {
				t.Fatalf("got %v, want cross_site_refused", err)
			}
			var be *berth.Error
			if !errors.As(err, &be) || be.Hint == "" || be.Detail["origin"] != tc.origin {
				t.Fatalf("the refusal %#v lacks the hint or the Origin it came with", err)
			}
		})
	}
}
