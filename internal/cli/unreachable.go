package cli

import (
	"crypto/tls"
	"errors"
	"net/url"
	"strings"

	"github.com/berth-dev/berth"
)

// unreachable is server_unreachable for a request to rawURL that got no
// HTTP answer (connection refused, no such host, timeout, TLS), with the fix
// that fits: plain http for an https URL to a loopback server that speaks
// plain http (as berth serve does by default), else checking that the
// server runs there.
func unreachable(rawURL string, err error) *berth.Error {
	cause := err
	if u := errors.Unwrap(err); u != nil {
		cause = u // a *url.Error repeats the method and the URL
	}
	e := berth.Errorf(berth.CodeServerUnreachable, "cannot reach %s: %v", rawURL, cause)
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return e
	}
	var rec tls.RecordHeaderError
	if u.Scheme == "https" && (errors.As(err, &rec) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")) {
		if berth.IsLoopbackHost(u.Hostname()) {
			return e.WithHint("the server at %s speaks plain http: berth login http://%s", u.Host, u.Host)
		}
		return e.WithHint("the server at %s speaks plain http, not https: serve berth with TLS (tls.cert_file and tls.key_file, or tls.acme)", u.Host)
	}
	return e.WithHint("check that berth serve runs at %s://%s (berth serve --addr HOST:PORT prints its address), then berth doctor %s", u.Scheme, u.Host, u.Host)
}
