package upstream

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth"
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
		_, _ = berth.ParseChallenge(s)
		_ = resetTime(http.Header{"Retry-After": {s}, "X-Ratelimit-Reset": {s}}, time.Unix(0, 0))
	})
}
