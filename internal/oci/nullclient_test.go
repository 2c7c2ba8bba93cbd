package oci_test

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
)

// TestNullClientIDOnV2: Basic credentials with the null GUID as user are a
// refresh token (ACR's docker login convention); a refused one is a 401 with
// the challenge, so clients log in again.
func TestNullClientIDOnV2(t *testing.T) {
	g := newGuarded(t)
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(berth.NullClientID, berth.RefreshTokenPrefix+"not-a-token")
	resp, body := g.do("GET", "/v2/team/web/tags/list", http.Header{"Authorization": req.Header["Authorization"]}, nil)
	expectError(t, resp, body, http.StatusUnauthorized, berth.CodeRefreshTokenInvalid)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("a refused refresh token on /v2/ has no challenge")
	}
}
