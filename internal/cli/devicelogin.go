package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// deviceWait waits d before the next poll of a device login, or returns
// ctx's error. Tests replace it to poll at the moment they choose.
var deviceWait = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// deviceAnswer is RFC 8628 section 3.2's device authorization response.
type deviceAnswer struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// deviceEndpoint returns the device authorization endpoint the server's
// discovery document names, or the default path when it names none.
func deviceEndpoint(ctx context.Context, hc *http.Client, srv registryAddr) string {
	def := srv.url + oauth.DeviceAuthorizationPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+oauth.DiscoveryPath, nil)
	if err != nil {
		return def
	}
	resp, err := hc.Do(req)
	if err != nil {
		return def
	}
	defer resp.Body.Close()
	var doc struct {
		Endpoint string `json:"device_authorization_endpoint"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc) != nil || doc.Endpoint == "" {
		return def
	}
	// Only an endpoint on the server itself: the device code is a credential.
	if u, err := url.Parse(doc.Endpoint); err != nil || u.Scheme+"://"+u.Host != srv.url {
		return def
	}
	return doc.Endpoint
}

// loginDevice logs a person in with the OAuth 2.0 device authorization
// grant (RFC 8628): it asks the server for a code, prints where to approve
// it, polls the token endpoint until the person approved in the browser
// (keeping the interval, and 5 s more at each slow_down), and stores the
// refresh token exactly as a login with a secret does.
func (e *env) loginDevice(ctx context.Context, hc *http.Client, srv registryAddr, ch challenge) error {
	form := url.Values{"client_id": {"berth-cli"}}
	endpoint := deviceEndpoint(ctx, hc, srv)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return unreachable(endpoint, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Description string     `json:"error_description"`
			Reason      berth.Code `json:"reason"`
			Hint        string     `json:"hint"`
			ErrorURI    string     `json:"error_uri"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Reason != "" {
			e := &berth.Error{Code: eb.Reason, Message: eb.Description, Hint: eb.Hint}
			if eb.ErrorURI != "" {
				e.WithDetail(berth.DetailExplain, eb.ErrorURI) // printed under the hint
			}
			return e
		}
		return berth.Errorf(berth.CodeUnsupported, "%s answered %s: this server offers no device login", endpoint, resp.Status).
			WithHint("log in with a client secret: berth login %s --client-id ID --client-secret-stdin", srv.host)
	}
	var d deviceAnswer
	if err := json.Unmarshal(b, &d); err != nil || d.DeviceCode == "" || d.UserCode == "" || d.VerificationURI == "" {
		return berth.Errorf(berth.CodeInvalid, "%s answered without a device code; it may not be a berth server", endpoint)
	}
	// The instructions go to stdout, where a person (or a script starting
	// the login) reads them; with -o json stdout holds the one JSON answer,
	// so they go to stderr.
	say := e.stdout
	if e.output == "json" {
		say = e.stderr
	}
	fmt.Fprintf(say, "To log in to %s, open %s and enter the code %s\n", srv.url, d.VerificationURI, d.UserCode)
	if d.VerificationURIComplete != "" {
		fmt.Fprintf(say, "or open %s\n", d.VerificationURIComplete)
	}
	fmt.Fprintf(say, "Waiting for the approval (the code expires in %d minutes)…\n", max(1, d.ExpiresIn/60))
	if f, ok := say.(interface{ Flush() error }); ok {
		_ = f.Flush() // the person must see the code before the first wait
	}

	interval := time.Duration(max(d.Interval, 1)) * time.Second
	for {
		if err := deviceWait(ctx, interval); err != nil {
			return berth.Errorf(berth.CodeDeviceCodeExpired, "stopped waiting for the approval of code %s: %v", d.UserCode, err).
				WithHint("run berth login %s again", srv.host)
		}
		tok, err := pollDevice(ctx, hc, ch, d.DeviceCode)
		if be := berth.AsError(err); be != nil && be.Code == berth.CodeDeviceCodePending {
			if be.Detail["slow_down"] == true {
				interval += 5 * time.Second // RFC 8628 section 3.5
			}
			continue
		}
		if err != nil {
			return err
		}
		if tok.RefreshToken == "" {
			return berth.Errorf(berth.CodeInvalid, "%s approved the login without a refresh token; it may not be a berth server", srv.url)
		}
		claims := readAccessClaims(tok.access())
		now := time.Now()
		l := storedLogin{
			URL: srv.url, ClientID: claims.ClientID, RefreshToken: tok.RefreshToken, CreatedAt: now.UTC().Truncate(time.Second),
			TokenURL: ch.realm, Service: ch.service, ExpiresAt: tok.refreshExpiry(now),
		}
		who := "as " + claims.Name
		if l.ExpiresAt != nil {
			who += ", until " + l.ExpiresAt.Format(time.RFC3339)
		}
		return e.storeLogin(srv, l, who)
	}
}

// pollDevice asks the token endpoint once for the tokens of an approved
// device login (RFC 8628 section 3.4).
func pollDevice(ctx context.Context, hc *http.Client, ch challenge, deviceCode string) (tokenAnswer, error) {
	f := url.Values{"grant_type": {oauth.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {"berth-cli"}}
	if ch.service != "" {
		f.Set("service", ch.service)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.realm, strings.NewReader(f.Encode()))
	if err != nil {
		return tokenAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doToken(hc, req)
}
