package client

import (
	"context"
	"net/url"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// CreateUpstream registers an upstream registry and its cache namespace;
// the answer never holds the password.
func (c *Client) CreateUpstream(ctx context.Context, req api.CreateUpstreamRequest) (berth.Upstream, error) {
	var u berth.Upstream
	err := c.do(ctx, "POST", "/upstreams", nil, req, &u)
	return u, err
}

// UpdateUpstream changes what req gives of upstream name.
func (c *Client) UpdateUpstream(ctx context.Context, name string, req api.UpdateUpstreamRequest) (berth.Upstream, error) {
	var u berth.Upstream
	err := c.do(ctx, "PATCH", "/upstreams/"+pathEscape(name), nil, req, &u)
	return u, err
}

// ListUpstreams returns every upstream, by name.
func (c *Client) ListUpstreams(ctx context.Context) ([]berth.Upstream, error) {
	var l api.UpstreamList
	err := c.do(ctx, "GET", "/upstreams", nil, nil, &l)
	return l.Upstreams, err
}

// GetUpstream returns one upstream.
func (c *Client) GetUpstream(ctx context.Context, name string) (berth.Upstream, error) {
	var u berth.Upstream
	err := c.do(ctx, "GET", "/upstreams/"+pathEscape(name), nil, nil, &u)
	return u, err
}

// DeleteUpstream removes an upstream, returning it as it was.
func (c *Client) DeleteUpstream(ctx context.Context, name string) (berth.Upstream, error) {
	var u berth.Upstream
	err := c.do(ctx, "DELETE", "/upstreams/"+pathEscape(name), nil, nil, &u)
	return u, err
}

// VerifyUpstream has the server call the upstream with its stored
// credential, for repository repo when not empty.
func (c *Client) VerifyUpstream(ctx context.Context, name, repo string) (api.UpstreamCheck, error) {
	var q url.Values
	if repo != "" {
		q = url.Values{"repository": {repo}}
	}
	var out api.UpstreamCheck
	err := c.do(ctx, "GET", "/upstreams/"+pathEscape(name)+"/verify", q, nil, &out)
	return out, err
}
