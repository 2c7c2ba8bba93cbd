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
)

// revokeTimeout bounds the revocation that berth logout and the credential
// helper's erase ask of the server.
const revokeTimeout = 10 * time.Second

// revokeEndpoint returns where l's server revokes tokens (RFC 7009): beside
// its token endpoint, as berth serves them.
func (l storedLogin) revokeEndpoint() string {
	if te := l.tokenEndpoint(); strings.HasSuffix(te, "/oauth2/token") {
		return strings.TrimSuffix(te, "/oauth2/token") + "/oauth2/revoke"
	}
	return strings.TrimRight(l.URL, "/") + "/oauth2/revoke"
}

// revokeLogin asks l's server to revoke its refresh token (RFC 7009, as a
// public client: the token is the proof), so that the login ends on the
// server and not only on this machine. A refusal is the server's
// *berth.Error.
func revokeLogin(ctx context.Context, hc *http.Client, l storedLogin) error {
	if l.RefreshToken == "" {
		return nil
	}
	f := url.Values{"token": {l.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {"berth-cli"}}
	endpoint := l.revokeEndpoint()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
	if err != nil {
		return fmt.Errorf("revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return unreachable(endpoint, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var eb struct {
		Description string     `json:"error_description"`
		Reason      berth.Code `json:"reason"`
		Hint        string     `json:"hint"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Reason != "" {
		return &berth.Error{Code: eb.Reason, Message: eb.Description, Hint: eb.Hint}
	}
	return berth.Errorf(berth.CodeInvalid, "%s answered %s: it may be a berth older than token revocation", endpoint, resp.Status)
}
