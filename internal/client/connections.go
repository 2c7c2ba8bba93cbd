package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// CreatePipeline registers a pipeline: issuer and subject, or a preset and
// its spec.
func (c *Client) CreatePipeline(ctx context.Context, req api.CreatePipelineRequest) (berth.Pipeline, error) {
	var p berth.Pipeline
	err := c.do(ctx, http.MethodPost, "/pipelines", nil, req, &p)
	return p, err
}

// SetPipelineKeys replaces the key set pipeline name pins; nil pins none
// (the issuer's published keys).
func (c *Client) SetPipelineKeys(ctx context.Context, name string, jwks json.RawMessage) (berth.Pipeline, error) {
	var p berth.Pipeline
	if jwks == nil {
		jwks = json.RawMessage("null")
	}
	err := c.do(ctx, http.MethodPost, "/pipelines/"+pathEscape(name)+"/keys", nil, api.PipelineKeysRequest{JWKS: jwks}, &p)
	return p, err
}

// ListPipelines returns the registered pipelines, ordered by name.
func (c *Client) ListPipelines(ctx context.Context) ([]berth.Pipeline, error) {
	var l api.PipelineList
	err := c.do(ctx, http.MethodGet, "/pipelines", nil, nil, &l)
	return l.Pipelines, err
}

// GetPipeline returns the pipeline named name and the connections that
// permit it.
func (c *Client) GetPipeline(ctx context.Context, name string) (api.PipelineDetail, error) {
	var p api.PipelineDetail
	err := c.do(ctx, http.MethodGet, "/pipelines/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// DeletePipeline removes the pipeline named name and its permissions.
func (c *Client) DeletePipeline(ctx context.Context, name string) (api.PipelineDetail, error) {
	var p api.PipelineDetail
	err := c.do(ctx, http.MethodDelete, "/pipelines/"+pathEscape(name), nil, nil, &p)
	return p, err
}

// CreateConnection creates a service connection; for a secret connection the
// answer's NewSecret holds the value, which the server never shows again.
func (c *Client) CreateConnection(ctx context.Context, req api.CreateConnectionRequest) (api.ConnectionChange, error) {
	var out api.ConnectionChange
	err := c.do(ctx, http.MethodPost, "/connections", nil, req, &out)
	return out, err
}

// ListConnections returns the service connections, ordered by name.
func (c *Client) ListConnections(ctx context.Context) ([]api.Connection, error) {
	var l api.ConnectionList
	err := c.do(ctx, http.MethodGet, "/connections", nil, nil, &l)
	return l.Connections, err
}

// GetConnection returns the service connection named name.
func (c *Client) GetConnection(ctx context.Context, name string) (api.ConnectionDetail, error) {
	var out api.ConnectionDetail
	err := c.do(ctx, http.MethodGet, connectionPath(name, ""), nil, nil, &out)
	return out, err
}

// DeleteConnection removes the service connection named name, revoking its
// secret and the refresh tokens issued through it.
func (c *Client) DeleteConnection(ctx context.Context, name string) (api.DeletedConnection, error) {
	var out api.DeletedConnection
	err := c.do(ctx, http.MethodDelete, connectionPath(name, ""), nil, nil, &out)
	return out, err
}

// AuthorizeConnection permits a pipeline (or, with all set, every pipeline)
// to use the connection.
func (c *Client) AuthorizeConnection(ctx context.Context, name, pipeline string, all bool) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "authorize", api.PermissionChange{Pipeline: pipeline, AllPipelines: all})
}

// UnauthorizeConnection withdraws a pipeline's permission (or, with all
// set, the permission of every pipeline).
func (c *Client) UnauthorizeConnection(ctx context.Context, name, pipeline string, all bool) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "unauthorize", api.PermissionChange{Pipeline: pipeline, AllPipelines: all})
}

// PermitPipeline grants a pipeline's pending permission request.
func (c *Client) PermitPipeline(ctx context.Context, name, pipeline string) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "permit", api.PermissionChange{Pipeline: pipeline})
}

// DismissRequest removes a pipeline's pending permission request without
// permitting it.
func (c *Client) DismissRequest(ctx context.Context, name, pipeline string) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "dismiss", api.PermissionChange{Pipeline: pipeline})
}

// PermissionRequests returns the requests pending on the connection.
func (c *Client) PermissionRequests(ctx context.Context, name string) (api.PermissionRequestList, error) {
	var out api.PermissionRequestList
	err := c.do(ctx, http.MethodGet, connectionPath(name, "requests"), nil, nil, &out)
	return out, err
}

// DisableConnection disables the connection.
func (c *Client) DisableConnection(ctx context.Context, name string) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "disable", nil)
}

// EnableConnection enables the connection.
func (c *Client) EnableConnection(ctx context.Context, name string) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "enable", nil)
}

// SaveConnection renews a secret connection's secret: the answer's NewSecret
// holds the new value, PreviousSecret when the old one stops working.
func (c *Client) SaveConnection(ctx context.Context, name string, req api.RenewRequest) (api.ConnectionChange, error) {
	var body any
	if req != (api.RenewRequest{}) {
		body = req
	}
	return c.connectionChange(ctx, name, "save", body)
}

// ConvertConnection changes how the connection authenticates.
func (c *Client) ConvertConnection(ctx context.Context, name string, req api.ConvertRequest) (api.ConnectionChange, error) {
	return c.connectionChange(ctx, name, "convert", req)
}

// VerifyConnection runs the connection's checklist. A failed check is a
// successful answer with OK false.
func (c *Client) VerifyConnection(ctx context.Context, name string) (berth.ConnectionReport, error) {
	var out berth.ConnectionReport
	err := c.do(ctx, http.MethodGet, connectionPath(name, "verify"), nil, nil, &out)
	return out, err
}

// ConnectionHistory returns the latest limit (the server's default when 0)
// audit events of the connection since since (a duration back from now or an
// RFC 3339 time; all when empty), oldest first.
func (c *Client) ConnectionHistory(ctx context.Context, name, since string, limit int) (api.ConnectionHistory, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.ConnectionHistory
	err := c.do(ctx, http.MethodGet, connectionPath(name, "history"), q, nil, &out)
	return out, err
}

func (c *Client) connectionChange(ctx context.Context, name, verb string, body any) (api.ConnectionChange, error) {
	var out api.ConnectionChange
	err := c.do(ctx, http.MethodPost, connectionPath(name, verb), nil, body, &out)
	return out, err
}

func connectionPath(name, verb string) string {
	p := "/connections/" + pathEscape(name)
	if verb != "" {
		p += "/" + verb
	}
	return p
}
