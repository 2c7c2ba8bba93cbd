package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// helperName is what `berth login` writes in docker's credHelpers: docker
// then runs docker-credential-berth.
const helperName = "berth"

// loginTimeout bounds the requests of one login.
const loginTimeout = 30 * time.Second

func newLoginCommand(e *env) *cobra.Command {
	var clientID, connection, idTokenFile, audience string
	var secretStdin, expose, device bool
	var scopes []string
	const usage = "berth login HOST [--device | --client-id ID --client-secret-stdin | --connection NAME [--id-token-file F] [--audience A]] [--expose-token]"
	cmd := &cobra.Command{
		Use:   "login HOST",
		Short: "Log in to a berth registry and let docker, crane, skopeo and oras use it through docker-credential-berth",
		Long: `login exchanges a client id and secret, or inside a CI job the job's OIDC ID
token (--connection), for a refresh token, stores it in
$XDG_CONFIG_HOME/berth/logins.json (mode 0600) and registers credHelpers[HOST] = "berth"
in $DOCKER_CONFIG/config.json, so that every client of docker's configuration asks
docker-credential-berth and refreshes its access tokens by itself. The secret is read
from stdin (--client-secret-stdin) or BERTH_CLIENT_SECRET, never from the command line,
and is not stored. HOST is host[:port] or a URL; plain http is allowed on loopback only.

--connection NAME logs in as the service connection NAME with no secret at all: berth
finds the job's ID token by itself, in this order: --id-token-file; BERTH_ID_TOKEN (GitLab
CI: id_tokens: BERTH_ID_TOKEN); BERTH_ID_TOKEN_FILE; GitHub Actions
(ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, with permissions: id-token: write); Azure
Pipelines (SYSTEM_OIDCREQUESTURI and SYSTEM_ACCESSTOKEN, for the service connection
BERTH_AZURE_SERVICE_CONNECTION_ID when set); the Kubernetes projected token
/var/run/secrets/tokens/berth. Where berth chooses the token's audience (GitHub Actions),
it asks for --audience, else for the registry's service name, the audience a pipeline
registered without --audience expects. The login lasts the connection's session (6 h by
default); docker-credential-berth refreshes access tokens within it.

With no credential at all (no --client-id, no BERTH_CLIENT_ID and BERTH_CLIENT_SECRET),
or with --device, a person logs in through the company's identity provider: berth
prints a URL and a code (OAuth 2.0 device authorization grant, RFC 8628), the person
opens it in any browser, signs in and approves, and the login is stored as above. It
lasts the person's session (auth.user_session_lifetime, 12 h by default).`,
		Args: argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			if connection == "" && (idTokenFile != "" || audience != "") {
				return berth.Errorf(berth.CodeInvalid, "--id-token-file and --audience apply to --connection only").
					WithHint("berth login %s --connection NAME", args[0])
			}
			if connection != "" && (clientID != "" || secretStdin) {
				return berth.Errorf(berth.CodeInvalid, "--connection logs in with the CI job's ID token; it cannot be combined with --client-id or --client-secret-stdin").
					WithHint("%s", usage)
			}
			srv, err := parseServer(args[0])
			if err != nil {
				return err
			}
			if !expose && len(scopes) > 0 {
				return berth.Errorf(berth.CodeInvalid, "--scope applies to --expose-token only; a stored login gets the scope of each request from the client").
					WithHint("berth login %s --expose-token --scope repository:NAME:pull", srv.host)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), loginTimeout)
			defer cancel()
			hc := &http.Client{Timeout: loginTimeout}
			if connection != "" {
				ch, err := discoverChallenge(ctx, hc, srv)
				if err != nil {
					return err
				}
				return e.loginConnection(ctx, hc, srv, ch, connection, idTokenFile, audience, expose, scopes)
			}
			noCredentials := clientID == "" && !secretStdin && e.getenv(envClientID) == "" && e.getenv(envClientSecret) == ""
			if !device && noCredentials && expose {
				// As az acr login --expose-token uses the az login: the
				// stored login of the host, refreshed for the scopes asked.
				l, _, ok, err := findLogin(e.getenv, srv.host)
				if err != nil {
					return err
				}
				if ok {
					tok, err := refreshAccessToken(ctx, hc, l, scopes)
					if err != nil {
						return err
					}
					return e.printExposedToken(srv, tok)
				}
				return berth.Errorf(berth.CodeCredentialsMissing, "--expose-token prints an access token from client credentials or the stored login of %s, and there are neither", srv.host).
					WithHint("berth login %s first, then berth login %s --expose-token; or berth login %s --expose-token --client-id NAME --client-secret-stdin < SECRET_FILE (or set %s and %s)", srv.host, srv.host, srv.host, envClientID, envClientSecret)
			}
			if device || noCredentials {
				if clientID != "" || secretStdin || expose {
					return berth.Errorf(berth.CodeInvalid, "--device logs a person in through the browser; it cannot be combined with --client-id, --client-secret-stdin or --expose-token").
						WithHint("berth login %s --device", srv.host)
				}
				ch, err := discoverChallenge(ctx, hc, srv)
				if err != nil {
					return err
				}
				dctx, dcancel := context.WithTimeout(cmd.Context(), berth.DeviceCodeLifetime+loginTimeout)
				defer dcancel()
				return e.loginDevice(dctx, hc, srv, ch)
			}
			id, secret, err := loginCredentials(e, cmd, clientID, secretStdin)
			if err != nil {
				return err
			}
			ch, err := discoverChallenge(ctx, hc, srv)
			if err != nil {
				return err
			}
			if expose {
				return e.exposeToken(ctx, hc, srv, ch, id, secret, scopes)
			}
			tok, err := requestToken(ctx, hc, ch, id, secret, true, nil)
			if err != nil {
				return err
			}
			if tok.RefreshToken == "" {
				return berth.Errorf(berth.CodeInvalid, "%s answered offline_token=true without a refresh token; it may not be a berth server", srv.url)
			}
			l := storedLogin{
				URL: srv.url, ClientID: id, RefreshToken: tok.RefreshToken, CreatedAt: time.Now().UTC().Truncate(time.Second),
				TokenURL: ch.realm, Service: ch.service, ExpiresAt: tok.refreshExpiry(time.Now()),
			}
			return e.storeLogin(srv, l, "as "+id)
		},
	}
	f := cmd.Flags()
	f.StringVar(&clientID, "client-id", "", "the client id (or principal name) to log in as; default BERTH_CLIENT_ID")
	f.BoolVar(&secretStdin, "client-secret-stdin", false, "read the client secret from stdin; default BERTH_CLIENT_SECRET")
	f.BoolVar(&expose, "expose-token", false, `print {"accessToken","loginServer","expiresOn"} instead of storing a login`)
	f.StringSliceVar(&scopes, "scope", nil, "with --expose-token: a scope for the access token, such as repository:team/app:pull,push (repeatable)")
	f.BoolVar(&device, "device", false, "log in as a person through the identity provider: print a URL and a code to approve in a browser (the default with no credential)")
	f.StringVar(&connection, "connection", "", "inside a CI job: log in as this service connection with the job's OIDC ID token")
	f.StringVar(&idTokenFile, "id-token-file", "", "with --connection: a file holding the CI job's OIDC ID token (default: found in the environment)")
	f.StringVar(&audience, "audience", "", "with --connection: the audience to request the ID token for (default: the registry's service name)")
	return cmd
}

// storeLogin stores l as the login of srv, registers the credential helper
// and says so; who completes "Logged in to URL …".
func (e *env) storeLogin(srv registryAddr, l storedLogin, who string) error {
	if err := saveLogin(e.getenv, srv.host, l); err != nil {
		return err
	}
	storePath, _ := loginsPath(e.getenv)
	// The helper must resolve before the docker configuration names it:
	// else every client fails to run it, and the entry hides whatever
	// credential docker had for the host.
	helperPath, linked, err := ensureHelper(e.getenv)
	if err != nil {
		be := berth.AsError(err)
		be.Message = fmt.Sprintf("logged in to %s (the berth CLI may use the login, stored in %s), but did not register the credential helper: %s",
			srv.url, storePath, be.Message)
		return be
	}
	cfgPath, removed, err := registerHelper(e.getenv, srv.host)
	if err != nil {
		return err
	}
	if note := helperNote(helperPath, linked); note != "" && e.output != "json" {
		fmt.Fprintf(e.stderr, "note: %s\n", note)
	}
	for _, entry := range removed.entries {
		fmt.Fprintf(e.stderr, "note: removed auths[%q] from %s: a credential from an earlier docker login, which the berth helper now replaces "+
			"(removing it with docker logout would have erased the berth login too); the file as it was is in %s, which still holds that credential: "+
			"delete it once the login works (berth scan reports it as a leak while it is there)\n", entry, cfgPath, removed.backup)
	}
	if e.output == "json" {
		out := map[string]any{
			"host": srv.host, "url": srv.url, "client_id": l.ClientID, "login_store": storePath,
			"docker_config": cfgPath, "credential_helper": "docker-credential-" + helperName,
			"credential_helper_path": helperPath, "credential_helper_linked": linked,
			"auths_entry_removed": len(removed.entries) > 0,
		}
		if removed.backup != "" {
			out["docker_config_backup"] = removed.backup
		}
		if l.Connection != "" {
			out["connection"], out["pipeline"] = l.Connection, l.Pipeline
		}
		if l.ExpiresAt != nil {
			out["expires_at"] = l.ExpiresAt.Format(time.RFC3339)
		}
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "Logged in to %s %s.\n", srv.url, who)
	fmt.Fprintf(e.stdout, "Stored a refresh token in %s and set credHelpers[%q] = %q in %s.\n", storePath, srv.host, helperName, cfgPath)
	fmt.Fprintf(e.stdout, "docker, crane, skopeo and oras now run docker-credential-%s (berth under that name) for %s.\n", helperName, srv.host)
	return nil
}

func newLogoutCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout HOST",
		Short: "Remove the login of HOST and its credHelpers entry in the docker configuration",
		Args:  argsExactly(1, "berth logout HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := hostKey(args[0])
			// The server revokes the refresh token first: a login removed
			// only here would stay usable by whoever copied it.
			l, _, found, err := findLogin(e.getenv, host)
			if err != nil {
				return err
			}
			var revokeErr error
			if found {
				ctx, cancel := context.WithTimeout(cmd.Context(), revokeTimeout)
				revokeErr = revokeLogin(ctx, &http.Client{Timeout: revokeTimeout}, l)
				cancel()
			}
			removed, err := removeLogin(e.getenv, host)
			if err != nil {
				return err
			}
			cfgPath, unregistered, err := unregisterHelper(e.getenv, host)
			if err != nil {
				return err
			}
			if !removed && !unregistered {
				return berth.Errorf(berth.CodeNotFound, "there is no berth login for %s", host).
					WithHint("berth login %s", host)
			}
			if revokeErr != nil {
				until := "until it expires"
				if l.ExpiresAt != nil {
					until = "until " + l.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(e.stderr, "warning: the server did not revoke the refresh token (%v): it stays valid %s; "+
					"removing the secret it came from ends it at once (berth secret list PRINCIPAL, berth secret remove PRINCIPAL SECRET_ID)\n", revokeErr, until)
			}
			if e.output == "json" {
				return e.printJSON(map[string]any{"host": host, "login_removed": removed, "credential_helper_removed": unregistered,
					"refresh_token_revoked": found && revokeErr == nil})
			}
			fmt.Fprintf(e.stdout, "Logged out of %s", host)
			if found && revokeErr == nil {
				fmt.Fprint(e.stdout, "; the server revoked the refresh token")
			}
			if unregistered {
				fmt.Fprintf(e.stdout, "; removed credHelpers[%q] from %s", host, cfgPath)
			}
			fmt.Fprintln(e.stdout, ".")
			return nil
		},
	}
}

// loginCredentials returns the client id and secret of a login: from the flags
// and stdin, else from BERTH_CLIENT_ID and BERTH_CLIENT_SECRET.
func loginCredentials(e *env, cmd *cobra.Command, clientID string, secretStdin bool) (string, string, error) {
	id := strings.TrimSpace(clientID)
	if id == "" {
		id = strings.TrimSpace(e.getenv(envClientID))
	}
	var secret string
	if secretStdin {
		line, err := readStdinLine(cmd.InOrStdin(), "the client secret", cmd.CommandPath()+" HOST --client-id ID --client-secret-stdin")
		if err != nil {
			return "", "", err
		}
		secret = strings.TrimSpace(line)
	} else {
		secret = strings.TrimSpace(e.getenv(envClientSecret))
	}
	if id == "" || secret == "" {
		var missing []string
		if id == "" {
			missing = append(missing, "a client id (--client-id or "+envClientID+")")
		}
		switch {
		case secret == "" && secretStdin:
			missing = append(missing, "a client secret, and --client-secret-stdin read an empty line")
		case secret == "":
			missing = append(missing, "a client secret (--client-secret-stdin or "+envClientSecret+")")
		}
		return "", "", berth.Errorf(berth.CodeCredentialsMissing, "berth login needs %s", joinAnd(missing)).
			WithHint("berth login HOST --client-id CLIENT_ID --client-secret-stdin < secret-file")
	}
	return id, secret, nil
}

// registryAddr is a registry named on the command line.
type registryAddr struct {
	url  string // scheme://host[:port]
	host string // host[:port], lower case: the key of credHelpers and the login store
}

// parseServer reads HOST as host[:port] or an http(s) URL. A bare host is
// reached over https, except on loopback, where a local berth serve speaks
// plain http; an explicit http URL is refused off loopback, since the client
// secret would travel unencrypted.
func parseServer(arg string) (registryAddr, error) {
	s := strings.TrimSpace(arg)
	if !strings.Contains(s, "://") {
		h := s
		if i := strings.IndexByte(h, '/'); i >= 0 {
			h = h[:i]
		}
		scheme := "https"
		if u, err := url.Parse("http://" + h); err == nil && berth.IsLoopbackHost(u.Hostname()) {
			scheme = "http"
		}
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/" && strings.TrimRight(u.Path, "/") != "/v2") || u.RawQuery != "" {
		return registryAddr{}, berth.Errorf(berth.CodeInvalid, "%q is not a registry host[:port] or an http(s) URL of one", arg).
			WithHint("berth login registry.example.com, or berth login http://127.0.0.1:5000 for a local server")
	}
	if u.Scheme == "http" && !berth.IsLoopbackHost(u.Hostname()) {
		return registryAddr{}, berth.Errorf(berth.CodeInvalid, "%s uses plain http to %s, which is not this machine: the client secret and tokens would travel unencrypted", arg, u.Host).
			WithHint("berth login https://%s", u.Host)
	}
	host := strings.ToLower(u.Host)
	return registryAddr{url: u.Scheme + "://" + host, host: host}, nil
}

// challenge is the Bearer challenge of a registry's /v2/.
type challenge struct {
	realm, service string
}

// discoverChallenge asks srv's /v2/ for its Bearer challenge, as every
// docker client does before it asks for a token.
func discoverChallenge(ctx context.Context, hc *http.Client, srv registryAddr) (challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/v2/", nil)
	if err != nil {
		return challenge{}, fmt.Errorf("GET %s/v2/: %w", srv.url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return challenge{}, unreachable(srv.url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ch, ok := parseBearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || !ok || ch.realm == "" {
		return challenge{}, berth.Errorf(berth.CodeInvalid, "%s/v2/ answered %s without a Bearer challenge; it is not a berth registry, or not at this address", srv.url, resp.Status).
			WithHint("berth doctor %s", srv.host)
	}
	ru, err := url.Parse(ch.realm)
	if err != nil || (ru.Scheme != "https" && !(ru.Scheme == "http" && berth.IsLoopbackHost(ru.Hostname()))) {
		return challenge{}, berth.Errorf(berth.CodeInvalid, "%s names the token endpoint %q, which is not https (or http on loopback); berth does not send a secret there", srv.url, ch.realm).
			WithHint("set the server's public URL to https://%s", srv.host)
	}
	return ch, nil
}

// parseBearerChallenge reads realm and service from a WWW-Authenticate
// Bearer challenge (RFC 6750 section 3); quoted values hold no quotes in
// berth's challenge, so a simple parser is enough.
func parseBearerChallenge(values []string) (challenge, bool) {
	for _, v := range values {
		scheme, params := berth.ParseChallenge(v)
		if scheme == "bearer" {
			return challenge{realm: params["realm"], service: params["service"]}, true
		}
	}
	return challenge{}, false
}

// tokenAnswer is the Docker token response of /oauth2/token.
type tokenAnswer struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
	// RefreshTokenExpiresIn is the refresh token's lifetime in seconds.
	RefreshTokenExpiresIn int `json:"refresh_token_expires_in"`
}

// refreshExpiry is when the refresh token expires, or nil when the server
// did not say.
func (t tokenAnswer) refreshExpiry(now time.Time) *time.Time {
	if t.RefreshTokenExpiresIn <= 0 {
		return nil
	}
	at := now.Add(time.Duration(t.RefreshTokenExpiresIn) * time.Second).UTC().Truncate(time.Second)
	return &at
}

func (t tokenAnswer) access() string {
	if t.AccessToken != "" {
		return t.AccessToken
	}
	return t.Token
}

// expires returns when the access token expires, counted from issued_at (or
// now, when the answer has none).
func (t tokenAnswer) expires() time.Time {
	at, err := time.Parse(time.RFC3339, t.IssuedAt)
	if err != nil {
		at = time.Now()
	}
	return at.Add(time.Duration(t.ExpiresIn) * time.Second).UTC()
}

// requestToken asks the token endpoint of ch for a token with Basic client
// credentials (Docker token authentication, GET), with a refresh token when
// offline is set. A refusal is the server's own *berth.Error.
func requestToken(ctx context.Context, hc *http.Client, ch challenge, id, secret string, offline bool, scopes []string) (tokenAnswer, error) {
	q := url.Values{}
	if ch.service != "" {
		q.Set("service", ch.service)
	}
	q.Set("client_id", "berth-cli")
	if offline {
		q.Set("offline_token", "true")
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	sep := "?"
	if strings.Contains(ch.realm, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ch.realm+sep+q.Encode(), nil)
	if err != nil {
		return tokenAnswer{}, fmt.Errorf("token request: %w", err)
	}
	req.SetBasicAuth(id, secret)
	return doToken(hc, req)
}

// refreshAccessToken redeems a stored login's refresh token for an access
// token (RFC 6749 section 6), as docker's clients do with an identity token.
func refreshAccessToken(ctx context.Context, hc *http.Client, l storedLogin, scopes []string) (tokenAnswer, error) {
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.RefreshToken}, "client_id": {"berth-cli"}}
	if l.Service != "" {
		f.Set("service", l.Service)
	}
	if len(scopes) > 0 {
		f.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.tokenEndpoint(), strings.NewReader(f.Encode()))
	if err != nil {
		return tokenAnswer{}, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doToken(hc, req)
}

// doToken sends a token request and decodes the answer, or the server's
// refusal into its *berth.Error.
func doToken(hc *http.Client, req *http.Request) (tokenAnswer, error) {
	endpoint := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	resp, err := hc.Do(req)
	if err != nil {
		return tokenAnswer{}, unreachable(endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tokenAnswer{}, fmt.Errorf("read the answer of %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Description string     `json:"error_description"`
			Reason      berth.Code `json:"reason"`
			Hint        string     `json:"hint"`
			RequestID   string     `json:"request_id"`
			Errors      []struct {
				Detail map[string]any `json:"detail"`
			} `json:"errors"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Reason != "" {
			e := &berth.Error{Code: eb.Reason, Message: eb.Description, Hint: eb.Hint}
			if len(eb.Errors) > 0 {
				// The facts behind the refusal, such as the pipeline and
				// connection of pipeline_not_authorized.
				for k, v := range eb.Errors[0].Detail {
					switch k {
					case "reason", "hint", "request_id":
					default:
						e.WithDetail(k, v)
					}
				}
			}
			if eb.RequestID != "" {
				e.WithDetail("request_id", eb.RequestID)
			}
			return tokenAnswer{}, e
		}
		return tokenAnswer{}, berth.Errorf(berth.CodeInvalid, "the token endpoint %s answered %s without a berth error; it may not be a berth server", endpoint, resp.Status)
	}
	var t tokenAnswer
	if err := json.Unmarshal(b, &t); err != nil || t.access() == "" {
		return tokenAnswer{}, berth.Errorf(berth.CodeInvalid, "the token endpoint %s answered 200 without a token; it may not be a berth server", endpoint)
	}
	return t, nil
}

// exposeToken prints an access token for tools that take one, in the shape
// other registries' CLIs print it, and stores nothing.
func (e *env) exposeToken(ctx context.Context, hc *http.Client, srv registryAddr, ch challenge, id, secret string, scopes []string) error {
	tok, err := requestToken(ctx, hc, ch, id, secret, false, scopes)
	if err != nil {
		return err
	}
	return e.printExposedToken(srv, tok)
}

// printExposedToken prints tok as --expose-token does.
func (e *env) printExposedToken(srv registryAddr, tok tokenAnswer) error {
	return e.printJSON(map[string]string{
		"accessToken": tok.access(),
		"loginServer": srv.host,
		"expiresOn":   tok.expires().Format(time.RFC3339),
	})
}

// dockerConfigPath returns $DOCKER_CONFIG/config.json, else
// $HOME/.docker/config.json.
func dockerConfigPath(getenv func(string) string) (string, error) {
	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".docker", "config.json"), nil
	}
	return "", berth.Errorf(berth.CodeInvalid, "neither DOCKER_CONFIG nor HOME is set, so berth cannot find the docker configuration").
		WithHint("export DOCKER_CONFIG=$HOME/.docker")
}

// removedAuth is the auths entries registerHelper removed (none, or every
// key naming the host, such as "host" and "https://host/v1/") and the backup
// of the docker configuration it kept before.
type removedAuth struct {
	entries []string
	backup  string
}

// registerHelper sets credHelpers[host] = "berth" in the docker
// configuration. Every auths entry of host that holds a credential (from an
// earlier docker login) is removed, once the file as it was is copied to a
// backup beside it (mode 0600): the helper replaces it, and removing it
// later with docker logout would erase the berth login too.
func registerHelper(getenv func(string) string, host string) (path string, removed removedAuth, err error) {
	var original []byte
	path, err = editDockerConfigRaw(getenv, func(raw []byte, cfg map[string]json.RawMessage) (bool, error) {
		changed := false
		var auths map[string]json.RawMessage
		if a, ok := cfg["auths"]; ok && json.Unmarshal(a, &auths) == nil {
			for k, v := range auths {
				var entry doctorDockerAuth
				if hostKey(k) != host || json.Unmarshal(v, &entry) != nil || !entry.hasCredential() {
					continue
				}
				delete(auths, k)
				removed.entries = append(removed.entries, k)
			}
			if len(removed.entries) > 0 {
				sort.Strings(removed.entries)
				b, err := marshalDocker(auths, "")
				if err != nil {
					return false, err
				}
				cfg["auths"], original, changed = b, raw, true
			}
		}
		helpers := map[string]json.RawMessage{}
		if raw, ok := cfg["credHelpers"]; ok && string(raw) != "null" {
			// docker reads credHelpers as host → helper name; anything else
			// is a file docker itself refuses, which berth leaves alone.
			var names map[string]string
			if err := json.Unmarshal(raw, &names); err != nil {
				return false, fmt.Errorf("credHelpers is not an object of helper names: %w", err)
			}
			if err := json.Unmarshal(raw, &helpers); err != nil {
				return false, fmt.Errorf("credHelpers is not an object: %w", err)
			}
		}
		if string(helpers[host]) == `"`+helperName+`"` {
			return changed, nil
		}
		helpers[host] = json.RawMessage(`"` + helperName + `"`)
		raw, err := marshalDocker(helpers, "")
		if err != nil {
			return false, err
		}
		cfg["credHelpers"] = raw
		return true, nil
	}, func(target string) error {
		if len(removed.entries) == 0 {
			return nil
		}
		removed.backup = target + ".berth-backup-" + time.Now().UTC().Format("20060102T150405Z")
		return atomicfile.Write(removed.backup, original) // mode 0600: it holds the credential
	})
	return path, removed, err
}

// unregisterHelper removes credHelpers[host] when it names berth.
func unregisterHelper(getenv func(string) string, host string) (path string, removed bool, err error) {
	path, err = editDockerConfig(getenv, func(cfg map[string]json.RawMessage) (bool, error) {
		helpers := map[string]json.RawMessage{}
		if raw, ok := cfg["credHelpers"]; !ok || json.Unmarshal(raw, &helpers) != nil {
			return false, nil
		}
		if string(helpers[host]) != `"`+helperName+`"` {
			return false, nil
		}
		delete(helpers, host)
		raw, err := marshalDocker(helpers, "")
		if err != nil {
			return false, err
		}
		cfg["credHelpers"] = raw
		removed = true
		return true, nil
	})
	return path, removed, err
}

// editDockerConfig reads the docker configuration (an absent file is {}),
// lets edit change it, and writes it back atomically when edit reports a
// change. Every key edit does not touch keeps its value; the file is written
// as docker writes it (tab-indented, keys sorted), through a symbolic link
// when it is one.
func editDockerConfig(getenv func(string) string, edit func(map[string]json.RawMessage) (bool, error)) (string, error) {
	return editDockerConfigRaw(getenv, func(_ []byte, cfg map[string]json.RawMessage) (bool, error) { return edit(cfg) }, nil)
}

// editDockerConfigRaw is editDockerConfig whose edit also sees the file as
// it was, and whose before, when not nil, runs before the file is replaced
// (with the path of the file itself).
func editDockerConfigRaw(getenv func(string) string, edit func([]byte, map[string]json.RawMessage) (bool, error), before func(target string) error) (string, error) {
	path, err := dockerConfigPath(getenv)
	if err != nil {
		return "", err
	}
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	cfg := map[string]json.RawMessage{}
	b, err := os.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return path, fmt.Errorf("read the docker configuration: %w", err)
	case len(strings.TrimSpace(string(b))) > 0:
		if err := json.Unmarshal(b, &cfg); err != nil {
			return path, berth.Errorf(berth.CodeInvalid, "%s is not valid JSON: %v", path, err).
				WithHint("fix or remove %s, then run the command again", path)
		}
		if cfg == nil { // the file holds null
			cfg = map[string]json.RawMessage{}
		}
	}
	changed, err := edit(b, cfg)
	if err != nil {
		return path, berth.Errorf(berth.CodeInvalid, "%s: %v", path, err)
	}
	if !changed {
		return path, nil
	}
	out, err := marshalDocker(cfg, "\t")
	if err != nil {
		return path, fmt.Errorf("encode the docker configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return path, fmt.Errorf("create the docker configuration folder: %w", err)
	}
	if before != nil {
		if err := before(target); err != nil {
			return path, err
		}
	}
	if err := atomicfile.Write(target, out); err != nil {
		return path, err
	}
	return path, nil
}

// marshalDocker encodes v as docker does, without escaping <, > and &, so
// that values such as "<token>" keep their bytes.
func marshalDocker(v any, indent string) (json.RawMessage, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	s := b.String()
	if indent == "" {
		s = strings.TrimSuffix(s, "\n")
	}
	return json.RawMessage(s), nil
}

// clientAssertionJWT is the client_assertion_type of a JWT client assertion
// (RFC 7523 section 2.2).
const clientAssertionJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// loginConnection logs in as a service connection: it finds the CI job's ID
// token (citoken.go), exchanges it at the token endpoint, and stores the
// refresh token as a login that names the connection, or with expose prints
// an access token instead.
func (e *env) loginConnection(ctx context.Context, hc *http.Client, srv registryAddr, ch challenge,
	connection, file, audience string, expose bool, scopes []string) error {
	if err := berth.ValidateConnectionName(connection); err != nil {
		return err
	}
	aud := audience
	if aud == "" {
		aud = ch.service
	}
	if aud == "" {
		return berth.Errorf(berth.CodeInvalid, "%s/v2/ announces no service name, which is the audience berth requests the ID token for", srv.url).
			WithHint("berth login %s --connection %s --audience AUDIENCE (the pipeline's --audience)", srv.host, connection)
	}
	finder := &idTokenFinder{getenv: e.getenv, http: hc}
	idt, err := finder.find(ctx, file, aud)
	if err != nil {
		return err
	}
	tok, err := exchangeIDToken(ctx, hc, ch, connection, idt, scopes)
	if err != nil {
		return explainExchange(err, idt, connection, aud)
	}
	if expose {
		return e.printExposedToken(srv, tok)
	}
	if tok.RefreshToken == "" {
		return berth.Errorf(berth.CodeInvalid, "%s exchanged the ID token without a refresh token; it may not be a berth server", srv.url)
	}
	c := readAccessClaims(tok.access())
	now := time.Now()
	l := storedLogin{
		URL: srv.url, ClientID: c.ClientID, RefreshToken: tok.RefreshToken, CreatedAt: now.UTC().Truncate(time.Second),
		TokenURL: ch.realm, Service: ch.service, ExpiresAt: tok.refreshExpiry(now),
		Connection: connection, Pipeline: c.Pipeline, Audience: audience,
	}
	who := "as service connection " + connection
	var facts []string
	if c.Pipeline != "" {
		facts = append(facts, "pipeline "+c.Pipeline)
	}
	if c.Name != "" {
		facts = append(facts, "acting as principal "+c.Name)
	}
	if l.ExpiresAt != nil {
		facts = append(facts, "until "+l.ExpiresAt.Format(time.RFC3339))
	}
	if len(facts) > 0 {
		who += " (" + strings.Join(facts, ", ") + ")"
	}
	return e.storeLogin(srv, l, who)
}

// exchangeIDToken sends the CI job's ID token to the token endpoint as a JWT
// client assertion naming the connection (RFC 7523 section 2.2, with
// grant_type=client_credentials). A refusal is the server's *berth.Error:
// assertion_invalid, assertion_expired, pipeline_unknown, audience_mismatch,
// pipeline_not_authorized, connection_unknown, connection_disabled.
func exchangeIDToken(ctx context.Context, hc *http.Client, ch challenge, connection string, idt ciToken, scopes []string) (tokenAnswer, error) {
	f := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {clientAssertionJWT},
		"client_assertion":      {idt.value},
		"connection":            {connection},
	}
	if ch.service != "" {
		f.Set("service", ch.service)
	}
	if len(scopes) > 0 {
		f.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.realm, strings.NewReader(f.Encode()))
	if err != nil {
		return tokenAnswer{}, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doToken(hc, req)
}

// explainExchange adds to a refused exchange where the ID token came from,
// and the fix the server may leave to the client: the audience Azure
// Pipelines always uses, the command that permits a pipeline.
func explainExchange(err error, idt ciToken, connection, audience string) error {
	be := berth.AsError(err)
	if be == nil {
		return err
	}
	out := *be
	switch out.Code {
	case berth.CodeInternal, berth.CodeInvalid:
	default:
		out.Message = fmt.Sprintf("%s was refused for service connection %s: %s", idt.describe(), connection, be.Message)
	}
	switch {
	case out.Code == berth.CodeAudienceMismatch && idt.source == "Azure Pipelines":
		out.Hint = fmt.Sprintf("Azure Pipelines mints ID tokens for the audience %s only: register the pipeline with --audience %s", azureAudience, azureAudience)
	case out.Code == berth.CodePipelineNotAuthorized && !strings.Contains(out.Hint, "berth connection permit"):
		if p, ok := out.Detail["pipeline"].(string); ok && p != "" {
			out.Hint = fmt.Sprintf("berth connection permit %s --pipeline %s", connection, p)
		} else {
			out.Hint = fmt.Sprintf("berth connection requests %s lists the pipeline; berth connection permit %s --pipeline PIPELINE permits it", connection, connection)
		}
	case out.Code == berth.CodePipelineUnknown && out.Hint == "" && idt.issuer != "":
		out.Hint = fmt.Sprintf("berth pipeline create NAME --issuer %s --subject '%s' --audience %s", idt.issuer, idt.subject, audience)
	}
	return &out
}

// accessClaims is what the CLI reads of an access token the server just
// issued: it is only read, not verified.
type accessClaims struct {
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	CredentialID string `json:"credential_id"`
	Connection   string `json:"connection"`
	Pipeline     string `json:"pipeline"`
	Run          string `json:"ci_run"`
}

// readAccessClaims decodes the payload of an access token; the zero value
// when it is not a JWT.
func readAccessClaims(token string) accessClaims {
	var c accessClaims
	jwtPayload(token, &c)
	return c
}
