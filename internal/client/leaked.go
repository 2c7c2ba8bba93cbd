package client

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/internal/api"
)

// RevokeLeakedSecret revokes the client secret whose value is value, found
// where it should not be, with its refresh tokens. It returns not_found when
// the server knows no such secret, and the answer says whether it had been
// revoked before. The value travels in the request body only.
func (c *Client) RevokeLeakedSecret(ctx context.Context, value string) (api.RevokedLeaked, error) {
	var out api.RevokedLeaked
	err := c.do(ctx, http.MethodPost, "/secrets/revoke-leaked", nil, api.RevokeLeakedRequest{Value: value}, &out)
	return out, err
}
