package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/client"
)

// The login store is where `berth login` keeps what it obtained, for the
// credential helper (docker-credential-berth) and for the CLI itself when
// BERTH_URL/BERTH_CLIENT_ID/BERTH_CLIENT_SECRET are not set.
//
// It is one JSON file, $XDG_CONFIG_HOME/berth/logins.json, or
// $HOME/.config/berth/logins.json when XDG_CONFIG_HOME is not set; its folder
// has mode 0700 and the file 0600, and it is replaced atomically. The file is
// an object keyed by registry host (host[:port], lower case, as docker's
// credHelpers names it):
//
//	{
//	  "127.0.0.1:5000": {
//	    "url": "http://127.0.0.1:5000",            // the server, scheme://host[:port]
//	    "client_id": "6f1c…",                      // who logged in (informative)
//	    "refresh_token": "brt_r_…",                // the credential: a berth refresh token
//	    "expires_at": "2027-01-01T00:00:00Z",      // the refresh token's expiry, when known
//	    "created_at": "2026-11-25T20:00:00Z",      // when berth login stored it
//	    "token_url": "http://127.0.0.1:5000/oauth2/token", // the realm of /v2/'s challenge
//	    "service": "127.0.0.1:5000",               // the service of /v2/'s challenge
//	    "connection": "ci",                        // berth login --connection: the service connection,
//	    "pipeline": "ci-main",                     //   the pipeline the CI job's ID token matched,
//	    "audience": "…"                            //   and --audience, when it was given
//	  }
//	}
//
// Only the refresh token is a secret; no client secret is ever stored.

// storedLogin is one entry of the login store.
type storedLogin struct {
	URL          string     `json:"url"`
	ClientID     string     `json:"client_id"`
	RefreshToken string     `json:"refresh_token"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	TokenURL     string     `json:"token_url,omitempty"`
	Service      string     `json:"service,omitempty"`
	// Connection is the service connection of a login made with berth login
	// --connection, Pipeline the pipeline the server matched the CI job's ID
	// token to, and Audience the --audience it was requested for ("" for the
	// service name); all "" for a login with a client secret.
	Connection string `json:"connection,omitempty"`
	Pipeline   string `json:"pipeline,omitempty"`
	Audience   string `json:"audience,omitempty"`
}

// tokenEndpoint returns where the login's refresh token is redeemed.
func (l storedLogin) tokenEndpoint() string {
	if l.TokenURL != "" {
		return l.TokenURL
	}
	return strings.TrimRight(l.URL, "/") + "/oauth2/token"
}

// loginsPath returns the path of the login store, or an error when neither
// XDG_CONFIG_HOME nor HOME is set.
func loginsPath(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "berth", "logins.json"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "berth", "logins.json"), nil
	}
	return "", berth.Errorf(berth.CodeInvalid, "neither XDG_CONFIG_HOME nor HOME is set, so berth has no folder to keep logins in").
		WithHint("export HOME=/home/USER, or XDG_CONFIG_HOME=/path/to/config")
}

// loadLogins returns every stored login by host; a store that does not exist
// (or a user without a home folder) holds none.
func loadLogins(getenv func(string) string) (map[string]storedLogin, error) {
	path, err := loginsPath(getenv)
	if err != nil {
		return map[string]storedLogin{}, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]storedLogin{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the berth logins: %w", err)
	}
	logins := map[string]storedLogin{}
	if len(bytes.TrimSpace(b)) == 0 {
		return logins, nil
	}
	if err := json.Unmarshal(b, &logins); err != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "%s is not a berth login store: %v", path, err).
			WithHint("remove %s and run berth login again", path)
	}
	return logins, nil
}

// saveLogin stores l as the login of host, replacing any earlier one.
func saveLogin(getenv func(string) string, host string, l storedLogin) error {
	return updateLogins(getenv, func(m map[string]storedLogin) bool {
		m[host] = l
		return true
	})
}

// removeLogin removes the login of host and reports whether there was one.
func removeLogin(getenv func(string) string, host string) (bool, error) {
	found := false
	err := updateLogins(getenv, func(m map[string]storedLogin) bool {
		_, found = m[host]
		delete(m, host)
		return found
	})
	return found, err
}

// updateLogins reads the store, lets change edit it, and writes it back
// atomically when change reports a change.
func updateLogins(getenv func(string) string, change func(map[string]storedLogin) bool) error {
	path, err := loginsPath(getenv)
	if err != nil {
		return err
	}
	m, err := loadLogins(getenv)
	if err != nil {
		return err
	}
	if !change(m) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the berth config folder: %w", err)
	}
	// MkdirAll leaves an existing folder's mode alone; the store's own folder
	// must not be readable by others.
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restrict the berth config folder: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the berth logins: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n')) // mode 0600
}

// findLogin returns the stored login of server, which may be a host[:port]
// or a URL.
func findLogin(getenv func(string) string, server string) (storedLogin, string, bool, error) {
	logins, err := loadLogins(getenv)
	if err != nil {
		return storedLogin{}, "", false, err
	}
	host := hostKey(server)
	l, ok := logins[host]
	return l, host, ok, nil
}

// hostKey reduces a server address as docker and other clients pass it
// (host, host:port, https://host/v2/, …) to the key of the login store and of
// docker's credHelpers: host[:port] in lower case.
func hostKey(server string) string {
	s := strings.TrimSpace(server)
	if i := strings.Index(s, "://"); i >= 0 {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return strings.ToLower(u.Host)
		}
		s = s[i+3:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// storedLoginClient returns a management API client that authenticates with
// an access token redeemed from a stored login: the login of base's host, or,
// when base is empty, the latest login. ok is false when there is no such
// login; a login whose refresh token the server refuses is the server's error
// (refresh_token_invalid, secret_revoked, …).
func (e *env) storedLoginClient(base string) (c *client.Client, ok bool, err error) {
	logins, err := loadLogins(e.getenv)
	if err != nil {
		return nil, false, err
	}
	var l storedLogin
	if base != "" {
		l, ok = logins[hostKey(base)]
	} else {
		for _, cand := range logins {
			if !ok || cand.CreatedAt.After(l.CreatedAt) || cand.CreatedAt.Equal(l.CreatedAt) && cand.URL < l.URL {
				l, ok = cand, true
			}
		}
	}
	if !ok || l.RefreshToken == "" {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	hc := &http.Client{Timeout: apiTimeout}
	tok, err := refreshAccessToken(ctx, hc, l, []string{apiScope})
	if err != nil {
		if be := berth.AsError(err); be != nil && be.Hint == "" {
			be.Hint = "berth login " + hostKey(l.URL)
		}
		return nil, true, err
	}
	hc.Transport = bearerTransport{token: tok.access(), next: http.DefaultTransport}
	return client.New(l.URL, "", "", hc), true, nil
}

// The scopes an access token needs to call the management API: every
// endpoint, or the reading ones (doctor reads only).
const (
	apiScope     = "registry:api:*"
	apiReadScope = "registry:api:pull"
)

// bearerTransport sends every request with a bearer access token in place of
// the Basic credentials the API client sets.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}
