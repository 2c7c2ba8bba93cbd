package client

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/internal/api"
)

// CreatePullSecret makes a client secret of the connection's (or the
// principal's) principal and returns it in a Kubernetes image pull secret's
// manifest, the one place its value is shown.
func (c *Client) CreatePullSecret(ctx context.Context, req api.PullSecretRequest) (api.PullSecret, error) {
	var out api.PullSecret
	err := c.do(ctx, http.MethodPost, "/pull-secrets", nil, req, &out)
	return out, err
}
