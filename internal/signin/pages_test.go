package signin

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// The sign-in pages carry the console's security headers, and their policy
// allows their one inline style by its hash, not every inline style: the
// hash in the header is the hash of the style the page holds.
func TestPagesSecurityHeaders(t *testing.T) {
	for _, name := range []string{"login", "logout", "device-code", "error"} {
		w := httptest.NewRecorder()
		render(w, http.StatusOK, name, map[string]any{})
		h := w.Header()
		policy := h.Get("Content-Security-Policy")
		if strings.Contains(policy, "unsafe-inline") || !strings.Contains(policy, "frame-ancestors 'none'") || !strings.Contains(policy, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", name, policy)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, h)
		}
		m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(w.Body.String())
		if m == nil {
			t.Fatalf("%s: no style in the page", name)
		}
		sum := sha256.Sum256([]byte(m[1]))
		if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(policy, want) {
			t.Errorf("%s: the policy %q does not allow the page's style (%s)", name, policy, want)
		}
	}
}

// The cause of a provider that did not answer goes to the audit log, not to
// the page of whoever opened the sign-in: it names addresses and TLS
// details.
func TestUnreachableKeepsTheCauseForOwners(t *testing.T) {
	e := unreachable(berth.IdentityProvider{Name: "corp", Issuer: "https://idp.example"}, "its discovery document",
		errors.New("dial tcp 10.0.0.5:443: connect: connection refused"))
	if e.Code != berth.CodeIdPUnreachable || strings.Contains(e.Message+e.Hint, "10.0.0.5") || !strings.Contains(e.Private["cause"], "10.0.0.5") {
		t.Fatalf("%+v", e)
	}
}
