package berth_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

func TestQueryCredential(t *testing.T) {
	secret := "brt_" + strings.Repeat("x7Q", 12) + "000000"
	refresh := "brr_" + strings.Repeat("k2", 19)
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaS13ZWIifQ.c2lnbmF0dXJlLWJ5dGVz"
	for _, tt := range []struct {
		query string
		where string // "" when none
	}{
		{"", ""},
		{"digest=sha256:" + strings.Repeat("ab", 32), ""},
		{"n=10&last=brt_ab", ""}, // a hint, or a tag that starts like one
		{"mount=sha256:00&from=team/app", ""},
		{"password=hunter2", "parameter password"},
		{"client_secret=", "parameter client_secret"},
		{"refresh_token=x", "parameter refresh_token"},
		{"assertion=x", "parameter assertion"},
		{"token=" + secret, `the value of parameter "token"`},
		{"a=1&b=" + url.QueryEscape("Basic ci:"+secret), `the value of parameter "b"`},
		{"state=" + refresh, `the value of parameter "state"`},
		{"access_token=" + jwt, `the value of parameter "access_token"`},
		{secret + "=1", "a parameter's name"},
	} {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := berth.QueryCredential(q); got != tt.where {
			t.Errorf("QueryCredential(%q) = %q, want %q", tt.query, got, tt.where)
		}
		err = berth.RefuseQueryCredential(q)
		if tt.where == "" {
			if err != nil {
				t.Errorf("RefuseQueryCredential(%q) = %v, want nil", tt.query, err)
			}
			continue
		}
		e := berth.AsError(err)
		if e == nil || e.Code != berth.CodeInvalid {
			t.Fatalf("RefuseQueryCredential(%q) = %v, want invalid", tt.query, err)
		}
		for _, v := range []string{secret, secret[8:], refresh[8:], jwt, "hunter2"} {
			if strings.Contains(e.Message, v) || strings.Contains(e.Hint, v) {
				t.Errorf("RefuseQueryCredential(%q) repeats the credential: %s / %s", tt.query, e.Message, e.Hint)
			}
		}
	}
}

// Decoys (runs of "eyJ" that are no JWT) before a JWT do not hide it, and do
// not make the search quadratic (BenchmarkQueryCredentialHostile).
func TestQueryCredentialAfterDecoys(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaS13ZWIifQ.c2lnbmF0dXJlLWJ5dGVz"
	for _, v := range []string{
		strings.Repeat("eyJ", 100) + " " + jwt,
		strings.Repeat("eyJ", 100) + "." + "x " + jwt,
		"eyJshort." + jwt,
	} {
		if got := berth.QueryCredential(url.Values{"q": {v}}); got == "" {
			t.Errorf("QueryCredential missed the JWT in %.40q…", v)
		}
	}
	if got := berth.QueryCredential(url.Values{"q": {strings.Repeat("eyJ", 1000)}}); got != "" {
		t.Errorf("decoys alone: %s", got)
	}
}

// BenchmarkQueryCredentialHostile is the largest query value a request can
// carry (a 64 KiB header) made of JWT starts: linear, not quadratic.
func BenchmarkQueryCredentialHostile(b *testing.B) {
	q := url.Values{"q": {strings.Repeat("eyJ", (64<<10)/3) + "."}}
	for b.Loop() {
		if berth.QueryCredential(q) != "" {
			b.Fatal("found a credential")
		}
	}
}
