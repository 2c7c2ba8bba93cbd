package oauth

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// Fuzz targets of the JWT headers and claims berth reads: access tokens
// (every bearer request, before anything is known of it), CI ID tokens
// (client assertions, before the issuer is known), and the key sets issuers
// publish. Seed corpora in testdata/fuzz; .ci/run runs each for a fixed time.

func FuzzVerifyAccessToken(f *testing.F) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	kr, err := LoadKeyring(f.TempDir(), now, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		f.Fatal(err)
	}
	kr.Issuer, kr.Audience = "https://registry.test", "registry.test"
	valid, err := kr.Sign(berth.AccessClaims{Subject: "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", Name: "ci", IssuedAt: now, Expires: now.Add(time.Hour),
		Access: []berth.ResourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(strings.Replace(valid, ".", "x.", 1))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := kr.Verify(token, now)
		if err != nil {
			if code := berth.ErrorCode(err); code != berth.CodeTokenInvalid && code != berth.CodeTokenExpired {
				t.Fatalf("code %s: %v", code, err)
			}
			if len(token) > 40 && strings.Contains(err.Error(), token) {
				t.Fatal("the refusal quotes the token")
			}
			return
		}
		if c.Issuer != kr.Issuer || c.Audience != kr.Audience || c.Subject == "" {
			t.Fatalf("verified claims %+v", c)
		}
	})
}

func FuzzParseAssertion(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIiwic3ViIjoicmVwbzpvcmcvYXBwIn0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "a.b.c", "garbage", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		jws, iss, err := parseAssertion(token)
		if err != nil {
			if !berth.IsCode(err, berth.CodeAssertionInvalid) {
				t.Fatalf("code %s", berth.ErrorCode(err))
			}
			return
		}
		if jws == nil || iss == "" || len(jws.Signatures) != 1 {
			t.Fatalf("parsed %q as issuer %q", token, iss)
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	for _, s := range []string{
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1"}]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[{"kty":"XYZ"}]}`, `{"keys":null}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeySet(b)
		if err != nil {
			return
		}
		for _, k := range keys {
			if !k.IsPublic() || !k.Valid() || k.Use == "enc" {
				t.Fatalf("key set %q yields an unusable key %+v", b, k)
			}
		}
	})
}
