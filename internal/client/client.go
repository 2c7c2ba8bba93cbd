// Package client is the Go client of berth's management API (/api/v1), as
// the CLI uses it. Every method returns the typed answer, or the server's own
// *berth.Error (code, message, hint) decoded from the API's error envelope, so
// that the caller shows exactly what the server said.
//
// It holds the client secret only to put it in the Authorization header; it
// never writes it in an error or anywhere else.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// Client calls one berth server's management API with client credentials.
type Client struct {
	base     string // scheme://host[:port][/prefix], without a trailing slash
	clientID string
	secret   string
	http     *http.Client
}

// New returns a client of the berth server at baseURL (such as
// https://registry.example.com) that authenticates with Basic clientID:secret.
// httpClient nil means http.DefaultClient.
func New(baseURL, clientID, secret string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), clientID: clientID, secret: secret, http: httpClient}
}

// maxResponse bounds a response body: a page of principals is the largest.
const maxResponse = 32 << 20

// do sends one request to path (under /api/v1) and decodes a success into out
// (when not nil), or returns the server's error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, c.http, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer of %s is not what berth sends: %w", method, path, c.base, err)
	}
	return nil
}

// send sends one request to path (under /api/v1) with hc and returns a
// successful response, whose body the caller closes, or the server's error.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, query url.Values, body any) (*http.Response, error) {
	u := c.base + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.SetBasicAuth(c.clientID, c.secret)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A url.Error names the URL, which holds no credential.
		return nil, fmt.Errorf("cannot reach berth at %s: %w (check BERTH_URL, and that berth serve runs there)", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
		}
		return nil, c.serverError(resp, b)
	}
	return resp, nil
}

// serverError decodes the API's error envelope into the server's *berth.Error,
// with its request id and its explanation link (berth.DetailExplain) in the
// detail.
// An answer without one did not come from berth's API.
func (c *Client) serverError(resp *http.Response, b []byte) error {
	var env api.ErrorBody
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		e := &berth.Error{Code: env.Error.Code, Message: env.Error.Message, Hint: env.Error.Hint, Detail: env.Error.Detail}
		if env.Error.RequestID != "" {
			e.WithDetail("request_id", env.Error.RequestID)
		}
		if env.Error.Explain != "" {
			e.WithDetail(berth.DetailExplain, env.Error.Explain)
		}
		return e
	}
	return berth.Errorf(berth.CodeInvalid, "%s answered %s without a berth error; it may not be a berth server", c.base, resp.Status).
		WithHint("set BERTH_URL to the address berth serve prints, such as http://127.0.0.1:5000")
}

func pathEscape(s string) string { return url.PathEscape(s) }

// CreatePrincipal creates an enabled service principal named name.
func (c *Client) CreatePrincipal(ctx context.Context, name string) (berth.Principal, error) {
	var p berth.Principal
	err := c.do(ctx, http.MethodPost, "/principals", nil, api.CreatePrincipalRequest{Name: name}, &p)
	return p, err
}

// ListPrincipals returns every principal, ordered by name, fetching as many
// pages as there are.
func (c *Client) ListPrincipals(ctx context.Context) ([]berth.Principal, error) {
	return c.ListPrincipalsOfKind(ctx, "")
}

// ListPrincipalsOfKind returns the principals of kind (every one when ""),
// ordered by name.
func (c *Client) ListPrincipalsOfKind(ctx context.Context, kind berth.PrincipalKind) ([]berth.Principal, error) {
	all := []berth.Principal{}
	after := ""
	for {
		q := url.Values{}
		if kind != "" {
			q.Set("kind", string(kind))
		}
		if after != "" {
			q.Set("after", after)
		}
		var page api.PrincipalList
		if err := c.do(ctx, http.MethodGet, "/principals", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Principals...)
		if page.Next == "" || page.Next == after {
			return all, nil
		}
		after = page.Next
	}
}

// GetPrincipal returns the principal named name and its roles.
func (c *Client) GetPrincipal(ctx context.Context, name string) (api.PrincipalDetail, error) {
	var p api.PrincipalDetail
	err := c.do(ctx, http.MethodGet, "/principals/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// DisablePrincipal disables the principal named name.
func (c *Client) DisablePrincipal(ctx context.Context, name string) (berth.Principal, error) {
	var p berth.Principal
	err := c.do(ctx, http.MethodPost, "/principals/"+pathEscape(name)+"/disable", nil, nil, &p)
	return p, err
}

// EnablePrincipal enables the principal named name.
func (c *Client) EnablePrincipal(ctx context.Context, name string) (berth.Principal, error) {
	var p berth.Principal
	err := c.do(ctx, http.MethodPost, "/principals/"+pathEscape(name)+"/enable", nil, nil, &p)
	return p, err
}

// DeletePrincipal deletes the principal named name, with its secrets, refresh
// tokens and role assignments.
func (c *Client) DeletePrincipal(ctx context.Context, name string) (api.DeletedPrincipal, error) {
	var p api.DeletedPrincipal
	err := c.do(ctx, http.MethodDelete, "/principals/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// AddSecret adds a client secret to the principal; the answer holds its value,
// which the server never shows again.
func (c *Client) AddSecret(ctx context.Context, principal string, req api.AddSecretRequest) (api.NewSecret, error) {
	var s api.NewSecret
	err := c.do(ctx, http.MethodPost, "/principals/"+pathEscape(principal)+"/secrets", nil, req, &s)
	return s, err
}

// ListSecrets returns the principal's secrets, removed ones included.
func (c *Client) ListSecrets(ctx context.Context, principal string) ([]api.Secret, error) {
	var l api.SecretList
	err := c.do(ctx, http.MethodGet, "/principals/"+pathEscape(principal)+"/secrets", nil, nil, &l)
	return l.Secrets, err
}

// ListExpiringSecrets returns the active secrets of every principal (of one,
// when principal is not empty) that expire within within (a duration such as
// "30d"; empty lists every active secret), soonest first, with the service
// connections that depend on each.
func (c *Client) ListExpiringSecrets(ctx context.Context, within, principal string) (api.ExpiringSecretList, error) {
	var l api.ExpiringSecretList
	q := url.Values{}
	if within != "" {
		q.Set("expiring_within", within)
	}
	if principal != "" {
		q.Set("principal", principal)
	}
	err := c.do(ctx, http.MethodGet, "/secrets", q, nil, &l)
	return l, err
}

// RemoveSecret revokes the principal's secret with this id.
func (c *Client) RemoveSecret(ctx context.Context, principal, id string) (api.RemovedSecret, error) {
	var s api.RemovedSecret
	err := c.do(ctx, http.MethodDelete, "/principals/"+pathEscape(principal)+"/secrets/"+pathEscape(id), nil, nil, &s)
	return s, err
}

// AssignRole gives the principal role on scope.
func (c *Client) AssignRole(ctx context.Context, principal, role, scope string) (api.RoleAssignment, error) {
	var a api.RoleAssignment
	err := c.do(ctx, http.MethodPost, "/roles", nil, api.RoleRequest{Principal: principal, Role: role, Scope: scope}, &a)
	return a, err
}

// RevokeRole removes the principal's role on exactly scope.
func (c *Client) RevokeRole(ctx context.Context, principal, role, scope string) (api.RoleAssignment, error) {
	var a api.RoleAssignment
	q := url.Values{"principal": {principal}, "role": {role}, "scope": {scope}}
	err := c.do(ctx, http.MethodDelete, "/roles", q, nil, &a)
	return a, err
}

// ListRoles returns the role assignments the caller may see, of principal
// only when it is not empty.
func (c *Client) ListRoles(ctx context.Context, principal string) ([]api.RoleAssignment, error) {
	q := url.Values{}
	if principal != "" {
		q.Set("principal", principal)
	}
	var l api.RoleList
	err := c.do(ctx, http.MethodGet, "/roles", q, nil, &l)
	return l.Roles, err
}

// CheckAccess replays the decision on whether principal (the caller when
// empty) may do action (a berth action, or pull, push or delete) on
// repository. A denial is a successful answer, with Allowed false.
func (c *Client) CheckAccess(ctx context.Context, principal, action, repository string) (api.AccessCheck, error) {
	q := url.Values{"action": {action}}
	if principal != "" {
		q.Set("principal", principal)
	}
	if repository != "" {
		q.Set("repository", repository)
	}
	var d api.AccessCheck
	err := c.do(ctx, http.MethodGet, "/access/check", q, nil, &d)
	return d, err
}
