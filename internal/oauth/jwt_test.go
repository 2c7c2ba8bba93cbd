package oauth_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	want := claims(t0)
	token := sign(t, kr, want)

	got, err := kr.Verify(token, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want.Issuer, want.Audience, want.NotBefore = issuer, audience, t0
	if got.ID == "" {
		t.Error("the token has no jti")
	}
	want.ID = got.ID
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Verify = %+v\nwant      %+v", got, want)
	}
	if kid := kidOf(t, token); kid != kr.Keys()[0].ID {
		t.Errorf("the token's kid is %q, want the signing key %q", kid, kr.Keys()[0].ID)
	}
}

func TestTokenWireShape(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	parts := strings.Split(token, ".")
	var header map[string]any
	var body map[string]any
	for i, dst := range []*map[string]any{&header, &body} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "ES256" || header["typ"] != "at+jwt" || header["kid"] == "" {
		t.Errorf("header = %v, want alg ES256, typ at+jwt and a kid", header)
	}
	// The Docker token shape: aud a string, access an array of {type,name,actions}.
	if body["aud"] != audience || body["iss"] != issuer {
		t.Errorf("aud, iss = %v, %v", body["aud"], body["iss"])
	}
	access, _ := json.Marshal(body["access"])
	if string(access) != `[{"actions":["pull","push"],"name":"team/app","type":"repository"}]` {
		t.Errorf("access = %s", access)
	}
	// Without access, the claim is an empty array, not null.
	c := claims(t0)
	c.Access = nil
	got, err := kr.Verify(sign(t, kr, c), t0)
	if err != nil || got.Access == nil || len(got.Access) != 0 {
		t.Errorf("a token without access: %+v, %v", got.Access, err)
	}
}

func TestVerifyExpired(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	expires := t0.Add(berth.DefaultAccessTokenLifetime)

	if _, err := kr.Verify(token, expires.Add(oauth.Leeway)); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
	_, err := kr.Verify(token, expires.Add(oauth.Leeway+time.Second))
	wantCode(t, "past the leeway", err, berth.CodeTokenExpired)
	_, err = kr.Verify(token, expires.Add(3*time.Hour))
	wantCode(t, "hours later", err, berth.CodeTokenExpired)
	if e := berth.AsError(err); !strings.Contains(e.Message, "3 hours ago") || e.Hint == "" {
		t.Errorf("token_expired says %q (hint %q); want how long ago, and a hint", e.Message, e.Hint)
	}
	// A token not valid yet (a clock far behind) is refused too.
	_, err = kr.Verify(token, t0.Add(-time.Hour))
	wantCode(t, "before it was issued", err, berth.CodeTokenInvalid)
}

func TestVerifyExpiredFromCache(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	if _, err := kr.Verify(token, t0); err != nil {
		t.Fatal(err)
	}
	_, err := kr.Verify(token, t0.Add(time.Hour))
	wantCode(t, "a cached token past its expiry", err, berth.CodeTokenExpired)
}

func TestVerifyCacheIsolated(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	got, err := kr.Verify(token, t0)
	if err != nil {
		t.Fatal(err)
	}
	got.Access[0].Actions[0] = "delete"
	got.Access = append(got.Access, berth.ResourceActions{Type: "registry", Name: "catalog", Actions: []string{"*"}})
	again, err := kr.Verify(token, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Access, claims(t0).Access) {
		t.Errorf("changing what Verify returned changed the cache: %+v", again.Access)
	}
}

func TestVerifyRefusesTampering(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	parts := strings.Split(token, ".")
	kid := kr.Keys()[0].ID
	key := privateKey(t, dir, kid)
	other, _ := newKeyring(t, 2) // same issuer and audience, another key

	// A payload granting more, with the original signature.
	c := claims(t0)
	c.Access[0].Actions = []string{"*"}
	richer := strings.Split(sign(t, kr, c), ".")[1]

	// HS256 keyed with the public key: the classic algorithm confusion.
	hsHeader := b64(`{"alg":"HS256","kid":"` + kid + `","typ":"at+jwt"}`)
	mac := hmac.New(sha256.New, kr.JWKS())
	mac.Write([]byte(hsHeader + "." + parts[1]))
	hs256 := hsHeader + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	flipped := []byte(parts[2])
	flipped[10] ^= 1
	if flipped[10] == '-' || flipped[10] == '_' {
		flipped[10] = 'A'
	}

	typ := map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}
	_, edPriv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := func(change func(map[string]any)) map[string]any {
		m := payload(t0)
		change(m)
		return m
	}
	cases := map[string]string{
		"signature altered":        parts[0] + "." + parts[1] + "." + string(flipped),
		"signature removed":        parts[0] + "." + parts[1] + ".",
		"payload swapped":          parts[0] + "." + richer + "." + parts[2],
		"alg none":                 b64(`{"alg":"none","kid":"`+kid+`","typ":"at+jwt"}`) + "." + parts[1] + ".",
		"alg HS256 (public key)":   hs256,
		"unknown kid":              sign(t, other, claims(t0)),
		"EdDSA under an ES256 kid": forge(t, jose.JSONWebKey{Key: edPriv, KeyID: kid}, jose.EdDSA, typ, payload(t0)),
		"no kid":                   forge(t, jose.JSONWebKey{Key: key.Key}, jose.ES256, typ, payload(t0)),
		"no typ":                   forge(t, key, jose.ES256, nil, payload(t0)),
		"typ JWT (an ID token)":    forge(t, key, jose.ES256, map[jose.HeaderKey]any{jose.HeaderType: "JWT"}, payload(t0)),
		"wrong issuer":             forge(t, key, jose.ES256, typ, p(func(m map[string]any) { m["iss"] = "https://evil.test" })),
		"wrong audience":           forge(t, key, jose.ES256, typ, p(func(m map[string]any) { m["aud"] = "other.test" })),
		"audience list without ours": forge(t, key, jose.ES256, typ,
			p(func(m map[string]any) { m["aud"] = []string{"a.test", "b.test"} })),
		"no subject":      forge(t, key, jose.ES256, typ, p(func(m map[string]any) { delete(m, "sub") })),
		"no expiry":       forge(t, key, jose.ES256, typ, p(func(m map[string]any) { delete(m, "exp") })),
		"issued later":    forge(t, key, jose.ES256, typ, p(func(m map[string]any) { m["iat"] = t0.Add(time.Hour).Unix() })),
		"claims not JSON": forge(t, key, jose.ES256, typ, "not an object"),
		"not a JWT":       "Basic dXNlcjpwYXNz",
		"empty":           "",
		"four parts":      token + ".x",
		"garbage":         "a.b.c",
		"huge":            strings.Repeat("a", 20000) + ".b.c",
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := kr.Verify(bad, t0.Add(time.Minute))
			wantCode(t, name, err, berth.CodeTokenInvalid)
			e := berth.AsError(err)
			for _, part := range strings.Split(bad, ".") {
				if len(part) > 8 && strings.Contains(e.Message+e.Hint, part) {
					t.Errorf("the message quotes the token: %s", e.Message)
				}
			}
			if strings.Contains(e.Message, "go-jose") || strings.Contains(e.Message, "square") {
				t.Errorf("the message shows library internals: %s", e.Message)
			}
		})
	}
	// Signed with this registry's key for another url or service: a replica
	// configured otherwise, which a new token would not mend.
	for name, want := range map[string]string{"wrong issuer": "same url:", "wrong audience": "same auth.service"} {
		_, err := kr.Verify(cases[name], t0.Add(time.Minute))
		if e := berth.AsError(err); e == nil || !strings.Contains(e.Hint, want) {
			t.Errorf("%s: hint %v, want it to name %q", name, err, want)
		}
	}
	// A token audience list that holds ours is accepted.
	listed := forge(t, key, jose.ES256, typ, p(func(m map[string]any) { m["aud"] = []string{"a.test", audience} }))
	if _, err := kr.Verify(listed, t0.Add(time.Minute)); err != nil {
		t.Errorf("an audience list holding ours: %v", err)
	}
}

func TestVerifyWithoutConfiguration(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	token := sign(t, kr, claims(t0))
	kr.Issuer = ""
	_, err := kr.Verify(token, t0)
	if err == nil || berth.AsError(err) != nil {
		t.Errorf("a keyring without issuer: got %v, want an internal error", err)
	}
}

func TestSignRefuses(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	for name, change := range map[string]func(*berth.AccessClaims){
		"no subject":          func(c *berth.AccessClaims) { c.Subject = "" },
		"no expiry":           func(c *berth.AccessClaims) { c.Expires = time.Time{} },
		"no issued-at":        func(c *berth.AccessClaims) { c.IssuedAt = time.Time{} },
		"expires before":      func(c *berth.AccessClaims) { c.Expires = c.IssuedAt.Add(-time.Second) },
		"longer than allowed": func(c *berth.AccessClaims) { c.Expires = c.IssuedAt.Add(2 * time.Hour) },
	} {
		c := claims(t0)
		change(&c)
		if _, err := kr.Sign(c); err == nil {
			t.Errorf("%s: Sign accepted it", name)
		}
	}
	kr.MaxTokenLifetime = 3 * time.Hour
	c := claims(t0)
	c.Expires = t0.Add(2 * time.Hour)
	if _, err := kr.Sign(c); err != nil {
		t.Errorf("a 2-hour token under a 3-hour MaxTokenLifetime: %v", err)
	}
}

func TestSignKeepsGivenFields(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	c := claims(t0)
	c.ID = "my-id"
	c.NotBefore = t0.Add(time.Minute)
	got, err := kr.Verify(sign(t, kr, c), t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "my-id" || !got.NotBefore.Equal(t0.Add(time.Minute)) {
		t.Errorf("ID, NotBefore = %q, %v", got.ID, got.NotBefore)
	}
	// Another audience than the keyring's is signed as asked, and refused by
	// this keyring's Verify.
	c.Audience = "other.test"
	_, err = kr.Verify(sign(t, kr, c), t0.Add(2*time.Minute))
	wantCode(t, "a token signed for another audience", err, berth.CodeTokenInvalid)
}

func TestSignConcurrent(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	done := make(chan string)
	for range 8 {
		go func() {
			token, err := kr.Sign(claims(t0))
			if err != nil {
				t.Error(err)
			}
			done <- token
		}()
	}
	ids := map[string]bool{}
	for range 8 {
		c, err := kr.Verify(<-done, t0)
		if err != nil {
			t.Fatal(err)
		}
		ids[c.ID] = true
	}
	if len(ids) != 8 {
		t.Errorf("8 tokens carry %d distinct ids", len(ids))
	}
}
