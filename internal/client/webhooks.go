package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// CreateWebhook subscribes url to events; the answer holds the signing
// secret, this once.
func (c *Client) CreateWebhook(ctx context.Context, req api.CreateWebhookRequest) (api.NewWebhook, error) {
	var w api.NewWebhook
	err := c.do(ctx, "POST", "/webhooks", nil, req, &w)
	return w, err
}

// ListWebhooks returns every webhook, oldest first.
func (c *Client) ListWebhooks(ctx context.Context) ([]berth.Webhook, error) {
	var l api.WebhookList
	err := c.do(ctx, "GET", "/webhooks", nil, nil, &l)
	return l.Webhooks, err
}

// GetWebhook returns one webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (berth.Webhook, error) {
	var w berth.Webhook
	err := c.do(ctx, "GET", "/webhooks/"+pathEscape(id), nil, nil, &w)
	return w, err
}

// DeleteWebhook deletes a webhook and its deliveries, returning it as it was.
func (c *Client) DeleteWebhook(ctx context.Context, id string) (berth.Webhook, error) {
	var w berth.Webhook
	err := c.do(ctx, "DELETE", "/webhooks/"+pathEscape(id), nil, nil, &w)
	return w, err
}

// ListDeliveries returns a webhook's delivery log, newest first, at most
// limit (the server's default when limit <= 0).
func (c *Client) ListDeliveries(ctx context.Context, id string, limit int) ([]berth.Delivery, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var l api.DeliveryList
	err := c.do(ctx, "GET", "/webhooks/"+pathEscape(id)+"/deliveries", q, nil, &l)
	return l.Deliveries, err
}

// Redeliver queues a delivery's event again and returns the new delivery.
func (c *Client) Redeliver(ctx context.Context, id, deliveryID string) (berth.Delivery, error) {
	var d berth.Delivery
	err := c.do(ctx, "POST", "/webhooks/"+pathEscape(id)+"/deliveries/"+pathEscape(deliveryID)+"/redeliver", nil, nil, &d)
	return d, err
}
