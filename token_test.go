package berth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestParseDockerScope(t *testing.T) {
	repo := func(name string, actions ...string) berth.ResourceActions {
		return berth.ResourceActions{Type: "repository", Name: name, Actions: actions}
	}
	for _, tc := range []struct {
		scope string
		want  []berth.ResourceActions
	}{
		{"", nil},
		{"   ", nil},
		{"repository:team/app:pull", []berth.ResourceActions{repo("team/app", "pull")}},
		{"repository:team/app:pull,push", []berth.ResourceActions{repo("team/app", "pull", "push")}},
		{"repository:app:*", []berth.ResourceActions{repo("app", "*")}},
		{"registry:catalog:*", []berth.ResourceActions{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}},
		// A cross-repository mount names two repositories.
		{"repository:team/app:pull,push repository:team/base:pull", []berth.ResourceActions{
			repo("team/app", "pull", "push"), repo("team/base", "pull")}},
		// The same resource twice: actions are merged in first-seen order.
		{"repository:a/b:push  repository:a/b:pull,push", []berth.ResourceActions{repo("a/b", "push", "pull")}},
		// Repeated and empty actions are dropped.
		{"repository:a:pull,,pull", []berth.ResourceActions{repo("a", "pull")}},
		// The resource class Docker sends for plugins.
		{"repository(plugin):vieux/sshfs:pull", []berth.ResourceActions{
			{Type: "repository", Class: "plugin", Name: "vieux/sshfs", Actions: []string{"pull"}}}},
		// Where an access token may be used outside /v2/.
		{"registry:api:* registry:metrics:pull", []berth.ResourceActions{
			{Type: "registry", Name: "api", Actions: []string{"*"}}, {Type: "registry", Name: "metrics", Actions: []string{"pull"}}}},
	} {
		got, err := berth.ParseDockerScope(tc.scope)
		if err != nil {
			t.Errorf("ParseDockerScope(%q): %v", tc.scope, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseDockerScope(%q) = %+v, want %+v", tc.scope, got, tc.want)
		}
	}
}

func TestParseDockerScopeInvalid(t *testing.T) {
	for _, scope := range []string{
		"repository",
		"repository:team/app",
		"repository:team/app:",
		"repository::pull",
		"repository:Team/App:pull",
		"repository:localhost:5000/team/app:pull", // a host is not part of the name
		"repository:team/app:PULL",
		"repository:team/app:pu-ll",
		"repository(:team/app:pull",
		"repository(Plugin):team/app:pull",
		"repository()x:team/app:pull",
		"registry:repositories:*",
		"blob:team/app:pull",
		"Repository:team/app:pull",
		":team/app:pull",
		"repository:team/app:pull registry:nope:*", // one bad entry spoils the request
		// Unknown actions are refused before anything else is looked at.
		"repository:a:pull,metadata",
		"registry:api:admin",
	} {
		_, err := berth.ParseDockerScope(scope)
		if got := berth.ErrorCode(err); got != berth.CodeInvalid {
			t.Errorf("ParseDockerScope(%q): got %v (code %q), want invalid", scope, err, got)
		}
	}
}

func TestParseDockerScopeBounded(t *testing.T) {
	var b strings.Builder
	for i := range 65 {
		fmt.Fprintf(&b, "repository:r%d:pull ", i)
	}
	_, err := berth.ParseDockerScope(b.String())
	if got := berth.ErrorCode(err); got != berth.CodeInvalid {
		t.Fatalf("65 resources: got %v, want invalid", err)
	}
	// The same resource many times is one entry, up to a bound on entries
	// as sent.
	if _, err := berth.ParseDockerScope(strings.Repeat("repository:r:pull ", 256)); err != nil {
		t.Fatalf("one resource repeated: %v", err)
	}
	_, err = berth.ParseDockerScope(strings.Repeat("repository:r:pull ", 257))
	if got := berth.ErrorCode(err); got != berth.CodeInvalid {
		t.Fatalf("257 entries: got %v, want invalid", err)
	}
	// The request that cost a minute of CPU: one entry with ~190k distinct
	// action words. It is refused at the first word that is not an action.
	b.Reset()
	b.WriteString("repository:r:pull")
	for i := range 190_000 {
		fmt.Fprintf(&b, ",%s", actionWord(i))
	}
	_, err = berth.ParseDockerScope(b.String())
	if got := berth.ErrorCode(err); got != berth.CodeInvalid {
		t.Fatalf("190k actions: got %v, want invalid", err)
	}
}

// actionWord returns the i-th word of lower-case letters.
func actionWord(i int) string {
	var w []byte
	for {
		w = append(w, byte('a'+i%26))
		if i /= 26; i == 0 {
			return string(w)
		}
	}
}

// BenchmarkParseDockerScopeHostile measures the largest scope a request can
// carry (a 64 KiB header) made of distinct resources: the parse is linear, and
// refused at the bound.
func BenchmarkParseDockerScopeHostile(b *testing.B) {
	var s strings.Builder
	for i := 0; s.Len() < 64<<10; i++ {
		fmt.Fprintf(&s, "repository:r%d:pull,push ", i)
	}
	for b.Loop() {
		if _, err := berth.ParseDockerScope(s.String()); err == nil {
			b.Fatal("accepted")
		}
	}
}

func TestResourceActionsStringRoundTrip(t *testing.T) {
	for _, s := range []string{"repository:team/app:pull,push", "registry:catalog:*", "repository(plugin):a/b:pull"} {
		got, err := berth.ParseDockerScope(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].String() != s {
			t.Errorf("ParseDockerScope(%q) printed back as %v", s, got)
		}
	}
}

func TestAccessClaimsAllows(t *testing.T) {
	c := berth.AccessClaims{Access: []berth.ResourceActions{
		{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "team/all", Actions: []string{"*"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}}
	for _, tc := range []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "team/app", "pull", true},
		{"repository", "team/app", "push", true},
		{"repository", "team/app", "delete", false},
		{"repository", "team/other", "pull", false},
		{"repository", "team/all", "delete", true},
		{"registry", "catalog", "*", true},
		{"registry", "team/app", "pull", false},
	} {
		if got := c.Allows(tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%s, %s, %s) = %v, want %v", tc.typ, tc.name, tc.action, got, tc.want)
		}
	}
}

func TestAccessClaimsCheckTime(t *testing.T) {
	issued := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	c := berth.AccessClaims{Name: "ci-web", IssuedAt: issued, NotBefore: issued, Expires: issued.Add(15 * time.Minute)}
	leeway := 30 * time.Second
	for _, tc := range []struct {
		now  time.Time
		want berth.Code
	}{
		{issued, ""},
		{issued.Add(15 * time.Minute), ""},
		{issued.Add(15*time.Minute + leeway), ""},
		{issued.Add(15*time.Minute + leeway + time.Second), berth.CodeTokenExpired},
		{issued.Add(-leeway), ""},
		{issued.Add(-leeway - time.Second), berth.CodeTokenInvalid},
	} {
		if got := berth.ErrorCode(c.CheckTime(tc.now, leeway)); got != tc.want {
			t.Errorf("CheckTime at %v: code %q, want %q", tc.now, got, tc.want)
		}
	}
	// The message says when and how long ago.
	err := berth.AsError(c.CheckTime(issued.Add(2*time.Hour), leeway))
	for _, want := range []string{"2026-03-14T15:15:00Z", "105 minutes ago", "ci-web"} {
		if !strings.Contains(err.Message, want) {
			t.Errorf("token_expired message %q lacks %q", err.Message, want)
		}
	}
	if err.Hint == "" {
		t.Error("token_expired has no hint")
	}
}

func TestRefreshTokenValue(t *testing.T) {
	r := tokenRand(1)
	seen := map[string]bool{}
	for range 200 {
		v, err := berth.NewRefreshTokenValue(r)
		if err != nil {
			t.Fatal(err)
		}
		s := v.Reveal()
		if !strings.HasPrefix(s, berth.RefreshTokenPrefix) || len(s) != 42 {
			t.Fatalf("value %q: want brr_ and 42 characters", s)
		}
		if seen[s] {
			t.Fatalf("value %q drawn twice", s)
		}
		seen[s] = true
		parsed, err := berth.ParseRefreshTokenValue(s)
		if err != nil {
			t.Fatalf("ParseRefreshTokenValue of a new value: %v", err)
		}
		if parsed.Reveal() != s || parsed.Hash() != v.Hash() {
			t.Fatalf("ParseRefreshTokenValue changed the value")
		}
		if len(v.Hash()) != 64 || v.Hash() == s {
			t.Fatalf("Hash() = %q, want 64 hex digits", v.Hash())
		}
	}
}

func TestRefreshTokenValueDeterministic(t *testing.T) {
	a, _ := berth.NewRefreshTokenValue(tokenRand(7))
	b, _ := berth.NewRefreshTokenValue(tokenRand(7))
	if a.Reveal() != b.Reveal() {
		t.Fatal("the same random source gave two values")
	}
}

func TestParseRefreshTokenValueRejects(t *testing.T) {
	v, err := berth.NewRefreshTokenValue(tokenRand(1))
	if err != nil {
		t.Fatal(err)
	}
	s := v.Reveal()
	flip := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"empty":           "",
		"other prefix":    "brt_" + s[4:],
		"an access token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"cut":             s[:len(s)-1],
		"longer":          s + "0",
		"random altered":  flip(10),
		"checksum typo":   flip(len(s) - 1),
		"bad character":   s[:10] + "-" + s[11:],
	} {
		_, err := berth.ParseRefreshTokenValue(bad)
		if got := berth.ErrorCode(err); got != berth.CodeRefreshTokenInvalid {
			t.Errorf("%s: got %v, want refresh_token_invalid", name, err)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("%s: the error quotes the value: %v", name, err)
		}
	}
}

func TestRefreshTokenValueRedacts(t *testing.T) {
	v, err := berth.NewRefreshTokenValue(tokenRand(3))
	if err != nil {
		t.Fatal(err)
	}
	secret := v.Reveal()[4:]
	type wrapper struct {
		V berth.RefreshTokenValue
		v berth.RefreshTokenValue
	}
	w := wrapper{v, v}
	j, _ := json.Marshal(w)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %s %q %x %+v %#v %v %+v %#v", v, v, v, v, v, v, w, w, w)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("issued", "token", v)
	for what, out := range map[string]string{"fmt": buf.String(), "json": string(j), "slog": logged.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the value: %s", what, out)
		}
	}
}

func TestRefreshTokenCheck(t *testing.T) {
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tok := berth.RefreshToken{ID: "x", Created: created, Expires: created.Add(24 * time.Hour)}
	if err := tok.Check(created.Add(time.Hour)); err != nil {
		t.Fatalf("live token: %v", err)
	}
	err := tok.Check(created.Add(72 * time.Hour))
	if berth.ErrorCode(err) != berth.CodeRefreshTokenInvalid || !strings.Contains(err.Error(), "expired") ||
		!strings.Contains(err.Error(), "2 days ago") {
		t.Errorf("expired token: %v", err)
	}
	if berth.ErrorCode(tok.Check(tok.Expires)) != berth.CodeRefreshTokenInvalid {
		t.Error("a token is expired at its expiry instant")
	}
	revoked := created.Add(2 * time.Hour)
	tok.Revoked = &revoked
	err = tok.Check(created.Add(3 * time.Hour))
	if berth.ErrorCode(err) != berth.CodeRefreshTokenInvalid || !strings.Contains(err.Error(), "revoked at 2026-03-01T02:00:00Z") {
		t.Errorf("revoked token: %v", err)
	}
}

// tokenRand returns a deterministic random source.
func tokenRand(n byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{n}) }

func TestParseChallenge(t *testing.T) {
	scheme, p := berth.ParseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"`)
	if scheme != "bearer" || p["realm"] != "https://auth.example.com/token" || p["service"] != "registry.example.com" || p["scope"] != "repository:a/b:pull,push" {
		t.Errorf("parseChallenge = %q %v", scheme, p)
	}
	scheme, p = berth.ParseChallenge(`Basic realm=plain, charset="UTF-8"`)
	if scheme != "basic" || p["realm"] != "plain" || p["charset"] != "UTF-8" {
		t.Errorf("parseChallenge = %q %v", scheme, p)
	}
}
