package api_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// TestErrorsLinkTheirExplanation: with the public URL set, every API error
// links to the page explaining its code (error.explain); without it, none.
func TestErrorsLinkTheirExplanation(t *testing.T) {
	linked := apitest.NewWith(t, apitest.Options{URL: "https://reg.example/"})
	bare := apitest.New(t)
	for _, s := range []*apitest.Server{linked, bare} {
		_, secret := s.AddPrincipal(t, "ci")
		cases := []struct {
			c    creds
			path string
			code berth.Code
		}{
			{creds{}, "/api/v1/principals", berth.CodeCredentialsMissing},
			{creds{"ci", "brt_wrong"}, "/api/v1/principals", berth.CodeSecretInvalid},
			{creds{"ci", secret}, "/api/v1/audit", berth.CodeRoleMissing},
			{adminCreds(s), "/api/v1/principals/nobody", berth.CodeNotFound},
		}
		for _, c := range cases {
			r := call(t, s, c.c, "GET", c.path, nil)
			e := r.fails(t, c.code)
			want := ""
			if s == linked {
				want = "https://reg.example/errors/" + string(c.code)
			}
			if got, _ := e["explain"].(string); got != want {
				t.Errorf("%s (url set: %v): explain %q, want %q", c.code, s == linked, got, want)
			}
			if s == bare && strings.Contains(string(r.body), "/errors/") {
				t.Errorf("%s without url: a link in %s", c.code, r.body)
			}
		}
	}
}
