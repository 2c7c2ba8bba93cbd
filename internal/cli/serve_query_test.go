package cli

import (
	"net/url"
	"strings"
	"testing"
)

// TestServeRefusesQueryCredentials: a real server refuses the admin's secret
// sent in the query string of /v2/ and /api/v1 requests, with invalid and a
// hint, and neither the answers nor the server's log hold it.
func TestServeRefusesQueryCredentials(t *testing.T) {
	s := startServe(t, t.TempDir())
	_, secret := s.admin(t)
	for _, path := range []string{
		"/v2/?password=" + url.QueryEscape(secret),
		"/v2/team/app/tags/list?last=" + url.QueryEscape(secret),
		"/api/v1/principals?client_secret=" + url.QueryEscape(secret),
		"/api/v1/secrets?expiring_within=30d&s=" + url.QueryEscape(secret),
	} {
		resp, body := s.do(t, "GET", path, nil, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `invalid`) {
			t.Errorf("%s: %d %s, want 400 invalid", path[:12], resp.StatusCode, body)
		}
		if !strings.Contains(string(body), "query string") || !strings.Contains(string(body), "Basic") {
			t.Errorf("%s: the answer does not say why and what to do instead: %s", path[:12], body)
		}
		if strings.Contains(string(body), secret[8:]) {
			t.Errorf("%s: the answer holds the secret", path[:12])
		}
	}
	if strings.Contains(s.stderr.String(), secret[8:]) {
		t.Fatal("the server log holds the secret sent in a query string")
	}
}
