package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/internal/api"
)

// AddIdP adds an identity provider; the answer never holds its secret.
func (c *Client) AddIdP(ctx context.Context, req api.IdPRequest) (api.IdP, error) {
	var p api.IdP
	err := c.do(ctx, http.MethodPost, "/idps", nil, req, &p)
	return p, err
}

// ListIdPs returns the identity providers, by name.
func (c *Client) ListIdPs(ctx context.Context) ([]api.IdP, error) {
	var l api.IdPList
	err := c.do(ctx, http.MethodGet, "/idps", nil, nil, &l)
	return l.IdPs, err
}

// GetIdP returns the identity provider named name.
func (c *Client) GetIdP(ctx context.Context, name string) (api.IdP, error) {
	var p api.IdP
	err := c.do(ctx, http.MethodGet, "/idps/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// RemoveIdP removes the identity provider named name.
func (c *Client) RemoveIdP(ctx context.Context, name string) (api.IdP, error) {
	var p api.IdP
	err := c.do(ctx, http.MethodDelete, "/idps/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// AssignGroupRole gives every member of group (PROVIDER:GROUP) role on scope.
func (c *Client) AssignGroupRole(ctx context.Context, group, role, scope string) (api.RoleAssignment, error) {
	var a api.RoleAssignment
	err := c.do(ctx, http.MethodPost, "/roles", nil, api.RoleRequest{Group: group, Role: role, Scope: scope}, &a)
	return a, err
}

// RevokeGroupRole removes the group's role on exactly scope.
func (c *Client) RevokeGroupRole(ctx context.Context, group, role, scope string) (api.RoleAssignment, error) {
	var a api.RoleAssignment
	q := url.Values{"group": {group}, "role": {role}, "scope": {scope}}
	err := c.do(ctx, http.MethodDelete, "/roles", q, nil, &a)
	return a, err
}

// CreateToken makes a personal access token for the calling person; the
// answer holds its value, which the server never shows again.
func (c *Client) CreateToken(ctx context.Context, req api.CreateTokenRequest) (api.Token, error) {
	var t api.Token
	err := c.do(ctx, http.MethodPost, "/tokens", nil, req, &t)
	return t, err
}

// ListTokens returns the caller's personal access tokens.
func (c *Client) ListTokens(ctx context.Context) ([]api.Token, error) {
	var l api.TokenList
	err := c.do(ctx, http.MethodGet, "/tokens", nil, nil, &l)
	return l.Tokens, err
}

// RevokeToken revokes the personal access token with id.
func (c *Client) RevokeToken(ctx context.Context, id string) (api.Token, error) {
	var t api.Token
	err := c.do(ctx, http.MethodDelete, "/tokens/"+pathEscape(id), nil, nil, &t)
	return t, err
}
