package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

const (
	issuer   = "https://registry.test"
	audience = "registry.test"
)

// t0 is the tests' epoch.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// seeded returns a deterministic random source.
func seeded(n byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{n}) }

// newKeyring loads a keyring from a new folder at t0, with the tests' issuer
// and audience, and returns it with its folder.
func newKeyring(t testing.TB, seed byte) (*oauth.Keyring, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	return loadKeyring(t, dir, t0, seed), dir
}

func loadKeyring(t testing.TB, dir string, now time.Time, seed byte) *oauth.Keyring {
	t.Helper()
	kr, err := oauth.LoadKeyring(dir, now, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	kr.Issuer, kr.Audience = issuer, audience
	return kr
}

// claims returns the claims of a 15-minute token issued at now.
func claims(now time.Time) berth.AccessClaims {
	return berth.AccessClaims{
		Subject:      "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
		Name:         "ci-web",
		ClientID:     "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
		CredentialID: "secret-1",
		Access: []berth.ResourceActions{
			{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		},
		IssuedAt: now,
		Expires:  now.Add(berth.DefaultAccessTokenLifetime),
	}
}

func sign(t testing.TB, kr *oauth.Keyring, c berth.AccessClaims) string {
	t.Helper()
	token, err := kr.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func wantCode(t *testing.T, what string, err error, code berth.Code) {
	t.Helper()
	if got := berth.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

// privateKey reads the private JWK of key kid from the keyring's folder, as
// someone who stole the file would.
func privateKey(t *testing.T, dir, kid string) jose.JSONWebKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, kid+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Key jose.JSONWebKey `json:"key"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Key
}

// forge signs payload with key, putting the given extra header fields (typ,
// kid overrides) in the protected header.
func forge(t *testing.T, key jose.JSONWebKey, alg jose.SignatureAlgorithm, headers map[jose.HeaderKey]any, payload any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range headers {
		opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// payload returns the JSON claims of a valid token issued at now, as a map a
// test can change.
func payload(now time.Time) map[string]any {
	return map[string]any{
		"iss": issuer, "aud": audience, "sub": "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "x",
		"access": []any{map[string]any{"type": "repository", "name": "team/app", "actions": []string{"pull"}}},
	}
}

// b64 encodes a JWT part.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// kidOf returns the kid in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &header); err != nil {
		t.Fatal(err)
	}
	return header.Kid
}
