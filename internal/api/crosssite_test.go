package api_test

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// A browser that was once given Basic credentials for the registry (the
// API and /metrics answer 401 with a Basic challenge, so a browser opened
// there asks for them and keeps them) sends them again with every request to
// the registry's origin, including a form another site submits to it. Such a
// form can carry JSON: enctype="text/plain" with the field name
// {"principal":"x and the value ","principal":"anonymous",…} makes the body
// {"principal":"x=","principal":"anonymous",…}, and the last key wins.
// The management API must not act on it: a request a browser marks as sent
// from another site (Sec-Fetch-Site, or an Origin that is not the
// registry's) changes nothing, whatever its credentials.
func TestAPIRefusesChangesSentFromAnotherSite(t *testing.T) {
	s := apitest.New(t)
	s.AddPrincipal(t, "ci")
	forged := `{"principal":"x=","principal":"anonymous","role":"pull","scope":"registry"}` + "\r\n"
	browser := func(headers map[string]string) func(*http.Request) {
		return func(req *http.Request) {
			req.SetBasicAuth(s.Admin.ClientID, s.AdminSecret) // what the browser keeps
			for k, v := range headers {
				req.Header.Set(k, v)
			}
		}
	}
	for _, tc := range []struct {
		what    string
		headers map[string]string
	}{
		{"a form of another site", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}},
		{"a form of a sibling subdomain", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.registry.example", "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"}},
		{"a browser without Sec-Fetch headers", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}},
		{"a sandboxed page (Origin null)", map[string]string{"Content-Type": "text/plain", "Origin": "null"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			refusal := send(t, s, "POST", "/api/v1/roles", forged, browser(tc.headers)).fails(t, berth.CodeCrossSiteRefused)
			if d, _ := refusal["detail"].(map[string]any); d["origin"] != tc.headers["Origin"] {
				t.Errorf("the refusal's facts %v do not name the Origin %q", refusal["detail"], tc.headers["Origin"])
			}
			send(t, s, "POST", "/api/v1/principals/ci/disable", "", browser(tc.headers)).fails(t, berth.CodeCrossSiteRefused)
			send(t, s, "DELETE", "/api/v1/principals/ci", nil, browser(tc.headers)).fails(t, berth.CodeCrossSiteRefused)
		})
	}
	// Nothing happened: the anonymous principal holds nothing, ci is enabled.
	var roles struct {
		Assignments []map[string]any `json:"assignments"`
	}
	call(t, s, adminCreds(s), "GET", "/api/v1/roles", nil).ok(t, http.StatusOK, &roles)
	for _, a := range roles.Assignments {
		if a["principal"] == berth.AnonymousName {
			t.Errorf("a forged form assigned %v", a)
		}
	}
	var ci struct {
		Disabled bool `json:"disabled"`
	}
	call(t, s, adminCreds(s), "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, &ci)
	if ci.Disabled {
		t.Error("a forged form disabled ci")
	}

	// The registry's own pages, and clients that are no browser, still may.
	same := browser(map[string]string{"Content-Type": "application/json", "Origin": s.URL, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"})
	send(t, s, "POST", "/api/v1/principals/ci/disable", "", same).ok(t, http.StatusOK, nil)
	call(t, s, adminCreds(s), "POST", "/api/v1/principals/ci/enable", nil).ok(t, http.StatusOK, nil)
	// Reading is not a change: a link from another site still opens.
	send(t, s, "GET", "/api/v1/principals/ci", nil, browser(map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})).ok(t, http.StatusOK, nil)
}
