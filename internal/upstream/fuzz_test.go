package upstream

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseChallenge feeds the WWW-Authenticate and rate-limit header
// parsers what an upstream may send: they must never panic.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
		`Basic realm="Registry Realm"`,
		`Bearer realm="a\"b",service=x`,
		`Bearer realm="unterminated`,
		`bearer realm=,,,scope`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseChallenge(s)
		_ = resetTime(http.Header{"Retry-After": {s}, "X-Ratelimit-Reset": {s}}, time.Unix(0, 0))
	})
}

func TestParseChallenge(t *testing.T) {
	scheme, p := parseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"`)
	if scheme != "bearer" || p["realm"] != "https://auth.example.com/token" || p["service"] != "registry.example.com" || p["scope"] != "repository:a/b:pull,push" {
		t.Errorf("parseChallenge = %q %v", scheme, p)
	}
	scheme, p = parseChallenge(`Basic realm=plain, charset="UTF-8"`)
	if scheme != "basic" || p["realm"] != "plain" || p["charset"] != "UTF-8" {
		t.Errorf("parseChallenge = %q %v", scheme, p)
	}
}
