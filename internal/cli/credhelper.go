package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
)

// identityTokenUser is the user name that tells docker, crane, skopeo and
// oras that a helper's Secret is an identity token (an OAuth 2.0 refresh
// token), which they redeem themselves at the registry's token endpoint with
// grant_type=refresh_token.
const identityTokenUser = berth.IdentityTokenUser

// RunCredentialHelper runs berth as docker-credential-berth: the docker
// credential helper protocol
// (https://github.com/docker/docker-credential-helpers#development), one
// action in args[0] (get, store, erase, list or version), its input on stdin,
// its answer on stdout. As the protocol requires, an error is one line on
// stdout, "credentials not found in native keychain" for a host without a
// login, and the exit status is 1.
func RunCredentialHelper(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if _, ok := stdout.(*safeWriter); !ok { // run as docker-credential-berth
		out := newSafeWriter(stdout)
		defer out.Flush()
		stdout = out
	}
	if len(args) != 1 {
		fmt.Fprintln(stdout, "Usage: docker-credential-berth <store|get|erase|list|version>")
		return 1
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "docker-credential-berth (github.com/berth-dev/berth) %s\n", Version)
		return 0
	case "--help", "-h":
		fmt.Fprintln(stdout, "Usage: docker-credential-berth <store|get|erase|list|version>")
		return 0
	case "store", "get", "erase", "list":
	default:
		// The library's own answer is ": unknown action: X".
		fmt.Fprintf(stdout, "docker-credential-berth: unknown action %q; the actions are store, get, erase, list and version (docker runs them itself)\n", berth.Truncate(args[0], 40))
		return 1
	}
	h := &credHelper{ctx: ctx, getenv: getenv}
	if err := credentials.HandleCommand(h, args[0], stdin, stdout); err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	return 0
}

// newCredentialHelperCommand is `berth credential-helper ACTION`, the helper
// under berth's own name.
func newCredentialHelperCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "credential-helper get|store|erase|list",
		Short: "Speak the docker credential helper protocol (what docker-credential-berth runs)",
		Args:  argsExactly(1, "berth credential-helper get|store|erase|list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := RunCredentialHelper(cmd.Context(), args, cmd.InOrStdin(), e.stdout, e.stderr, e.getenv); code != 0 {
				return errHelperFailed
			}
			return nil
		},
	}
}

// errHelperFailed ends `berth credential-helper` with status 1 once the
// helper has printed its error, as the protocol wants, on stdout.
var errHelperFailed = helperFailed{}

type helperFailed struct{}

func (helperFailed) Error() string { return "the credential helper failed" }

// credHelper answers the protocol from the login store.
type credHelper struct {
	ctx    context.Context
	getenv func(string) string
}

var _ credentials.Helper = (*credHelper)(nil)

// Get returns the stored refresh token of serverURL as an identity token.
func (h *credHelper) Get(serverURL string) (string, string, error) {
	l, _, ok, err := findLogin(h.getenv, serverURL)
	if err != nil {
		return "", "", err
	}
	if !ok || l.RefreshToken == "" {
		return "", "", credentials.NewErrCredentialsNotFound()
	}
	return identityTokenUser, l.RefreshToken, nil
}

// List returns every host with a login, each with the identity-token user.
func (h *credHelper) List() (map[string]string, error) {
	logins, err := loadLogins(h.getenv)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(logins))
	for host := range logins {
		out[host] = identityTokenUser
	}
	return out, nil
}

// Delete removes the login of serverURL (docker logout). Erasing a host
// without a login succeeds: docker logout removes the host's auths entry only
// after the helper's erase succeeds, so an error would leave a stale
// credential behind.
//
// The server is asked to revoke the login's refresh token first (RFC 7009);
// when it cannot be reached, the login is removed all the same.
func (h *credHelper) Delete(serverURL string) error {
	if l, _, ok, err := findLogin(h.getenv, serverURL); err == nil && ok {
		ctx, cancel := context.WithTimeout(h.ctx, revokeTimeout)
		_ = revokeLogin(ctx, &http.Client{Timeout: revokeTimeout}, l)
		cancel()
	}
	_, err := removeLogin(h.getenv, hostKey(serverURL))
	return err
}

// Add is what docker calls after `docker login HOST`. An identity token
// (user "<token>", or ACR's null client id with a berth refresh token, as
// scripts written for ACR send it) is stored as the login's refresh token.
// A client id and secret are exchanged for a refresh token, as berth login
// does, and only that token is stored: the secret never reaches the disk.
func (h *credHelper) Add(c *credentials.Credentials) error {
	srv, err := parseServer(c.ServerURL)
	if err != nil {
		return err
	}
	l := storedLogin{URL: srv.url, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if berth.RefreshTokenUser(c.Username) {
		l.RefreshToken = c.Secret
		if old, _, ok, err := findLogin(h.getenv, srv.host); err == nil && ok {
			l.ClientID, l.TokenURL, l.Service = old.ClientID, old.TokenURL, old.Service
			l.Connection, l.Pipeline, l.Audience = old.Connection, old.Pipeline, old.Audience
		}
		return saveLogin(h.getenv, srv.host, l)
	}
	ctx, cancel := context.WithTimeout(h.ctx, loginTimeout)
	defer cancel()
	hc := &http.Client{Timeout: loginTimeout}
	ch, err := discoverChallenge(ctx, hc, srv)
	if err != nil {
		return err
	}
	tok, err := requestToken(ctx, hc, ch, c.Username, c.Secret, true, nil)
	if err != nil {
		return err
	}
	if tok.RefreshToken == "" {
		return berth.Errorf(berth.CodeInvalid, "%s accepted the credentials but issued no refresh token for them", srv.url).
			WithHint("log in with a client id and secret, which berth exchanges for a refresh token: berth login %s --client-id ID --client-secret-stdin < secret-file (a refresh token goes in as the password of the user name %s)", srv.host, identityTokenUser)
	}
	l.ClientID, l.RefreshToken, l.TokenURL, l.Service = c.Username, tok.RefreshToken, ch.realm, ch.service
	l.ExpiresAt = tok.refreshExpiry(time.Now())
	return saveLogin(h.getenv, srv.host, l)
}
