package e2e

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// jwk is one key of a JWKS (RFC 7517), with the members berth's key types use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"` // a private key's; must never be published
}

// getJSON GETs u and decodes its JSON answer into v; the answer must be 200
// with a JSON content type.
func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: time.Minute}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/jwk-set+json") {
		t.Errorf("GET %s: Content-Type %q, want JSON", u, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
}

// jwtParts splits a compact JWS and decodes its header and payload.
func jwtParts(t testing.TB, token string) (header, payload map[string]any, signingInput string, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("the access token has %d dot-separated parts, want 3", len(parts))
	}
	dec := func(what, s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("access token %s: %v", what, err)
		}
		if v == nil {
			sig = b
			return
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("access token %s: %v", what, err)
		}
	}
	dec("header", parts[0], &header)
	dec("payload", parts[1], &payload)
	dec("signature", parts[2], nil)
	return header, payload, parts[0] + "." + parts[1], sig
}

// verifyJWS checks sig over input with the public key k.
func verifyJWS(t testing.TB, k jwk, alg, input string, sig []byte) {
	t.Helper()
	b64 := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("key %s: %v", k.Kid, err)
		}
		return b
	}
	switch {
	case alg == "ES256" && k.Kty == "EC" && k.Crv == "P-256":
		x, y := b64(k.X), b64(k.Y)
		if len(x) != 32 || len(y) != 32 {
			t.Fatalf("key %s: P-256 coordinates of %d and %d bytes", k.Kid, len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("key %s: %v", k.Kid, err)
		}
		if len(sig) != 64 {
			t.Fatalf("ES256 signature of %d bytes, want 64 (R || S)", len(sig))
		}
		h := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			t.Fatalf("the access token's ES256 signature does not verify with JWKS key %s", k.Kid)
		}
	case alg == "EdDSA" && k.Kty == "OKP" && k.Crv == "Ed25519":
		pub := b64(k.X)
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("key %s: Ed25519 key of %d bytes", k.Kid, len(pub))
		}
		if !ed25519.Verify(pub, []byte(input), sig) {
			t.Fatalf("the access token's EdDSA signature does not verify with JWKS key %s", k.Kid)
		}
	default:
		t.Fatalf("token alg %q does not fit JWKS key %s (kty %q, crv %q, alg %q)", alg, k.Kid, k.Kty, k.Crv, k.Alg)
	}
}

// TestOpenIDDiscoveryAndJWKS: the discovery document names the issuer and
// the token endpoint; tokens from that endpoint (OAuth 2.0 POST and Docker
// GET) carry a kid that the JWKS lists, and verify with that key.
func TestOpenIDDiscoveryAndJWKS(t *testing.T) {
	needBerth(t)
	s := startServer(t, t.TempDir())
	id, secret := s.adminCreds(t)

	var doc struct {
		Issuer        string   `json:"issuer"`
		TokenEndpoint string   `json:"token_endpoint"`
		JWKSURI       string   `json:"jwks_uri"`
		GrantTypes    []string `json:"grant_types_supported"`
	}
	getJSON(t, "http://"+s.addr+"/.well-known/openid-configuration", &doc)
	// With no url configured, the issuer is the address berth serves on.
	if want := "http://" + s.addr; doc.Issuer != want {
		t.Errorf("issuer %q, want %q", doc.Issuer, want)
	}
	if want := strings.TrimSuffix(doc.Issuer, "/") + "/oauth2/token"; doc.TokenEndpoint != want {
		t.Errorf("token_endpoint %q, want %q", doc.TokenEndpoint, want)
	}
	if doc.JWKSURI == "" {
		t.Fatal("the discovery document has no jwks_uri")
	}
	for _, g := range []string{"client_credentials", "refresh_token"} {
		if !strings.Contains(strings.Join(doc.GrantTypes, " "), g) {
			t.Errorf("grant_types_supported %v lacks %s", doc.GrantTypes, g)
		}
	}

	var set struct {
		Keys []jwk `json:"keys"`
	}
	getJSON(t, doc.JWKSURI, &set)
	if len(set.Keys) == 0 {
		t.Fatalf("%s lists no keys", doc.JWKSURI)
	}
	byKid := map[string]jwk{}
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatalf("%s publishes the private part of key %s", doc.JWKSURI, k.Kid)
		}
		if k.Kid == "" {
			t.Errorf("%s lists a key without kid", doc.JWKSURI)
		}
		byKid[k.Kid] = k
	}

	// Tokens from the advertised endpoint, in both dialects.
	scope := "repository:e2e/oidc:pull"
	status, post := tokenRequest(t, doc.TokenEndpoint, http.MethodPost, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if status != http.StatusOK || post.AccessToken == "" {
		t.Fatalf("POST %s client_credentials: %d %s %s", doc.TokenEndpoint, status, post.Error, post.Reason)
	}
	status, get := tokenRequest(t, doc.TokenEndpoint, http.MethodGet, id, secret, url.Values{"service": {"berth"}, "scope": {scope}})
	if status != http.StatusOK || get.Token == "" {
		t.Fatalf("GET %s: %d %s %s", doc.TokenEndpoint, status, get.Error, get.Reason)
	}

	for what, token := range map[string]string{"POST client_credentials": post.AccessToken, "Docker GET": get.Token} {
		header, payload, input, sig := jwtParts(t, token)
		kid, _ := header["kid"].(string)
		alg, _ := header["alg"].(string)
		k, ok := byKid[kid]
		if !ok {
			t.Fatalf("%s token: kid %q is not in the JWKS %s (kids %v)", what, kid, doc.JWKSURI, keysOf(byKid))
		}
		if k.Alg != "" && k.Alg != alg {
			t.Errorf("%s token: alg %q, its JWKS key says %q", what, alg, k.Alg)
		}
		verifyJWS(t, k, alg, input, sig)
		if iss, _ := payload["iss"].(string); iss != doc.Issuer {
			t.Errorf("%s token: iss %q, the discovery document's issuer is %q", what, iss, doc.Issuer)
		}
		if exp, _ := payload["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
			t.Errorf("%s token: exp %v is not in the future", what, payload["exp"])
		}
	}

	// The registry accepts what the endpoint issued.
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+post.AccessToken)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with the issued token: %s", resp.Status)
	}
}

func keysOf(m map[string]jwk) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
