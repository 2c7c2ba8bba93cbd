package api

import (
	"log/slog"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth"
)

// CreateWebhookRequest is the body of POST /api/v1/webhooks.
type CreateWebhookRequest struct {
	URL string `json:"url"`
	// Events are event type names (secret.expiring, image.pushed, …).
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
}

// NewWebhook is the answer of POST /api/v1/webhooks: the webhook and, this
// once, the value of its signing secret.
type NewWebhook struct {
	berth.Webhook
	Secret string `json:"secret"`
}

// WebhookList is the answer of GET /api/v1/webhooks, oldest first.
type WebhookList struct {
	Webhooks []berth.Webhook `json:"webhooks"`
}

// DeliveryList is the answer of GET /api/v1/webhooks/{id}/deliveries, newest
// first.
type DeliveryList struct {
	Deliveries []berth.Delivery `json:"deliveries"`
}

// Page sizes of the delivery log.
const (
	defaultDeliveries = 100
	maxDeliveries     = 1000
)

func (h *handler) routeWebhooks() {
	h.handle("POST /api/v1/webhooks", h.createWebhook)
	h.handle("GET /api/v1/webhooks", h.listWebhooks)
	h.handle("GET /api/v1/webhooks/{id}", h.showWebhook)
	h.handle("DELETE /api/v1/webhooks/{id}", h.deleteWebhook)
	h.handle("GET /api/v1/webhooks/{id}/deliveries", h.listDeliveries)
	h.handle("POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", h.redeliver)
}

// webhookByID returns the webhook the path's {id} names: invalid for an id
// that is not a UUID, not_found with a hint when none has it.
func (h *handler) webhookByID(r *http.Request) (berth.Webhook, error) {
	id, err := berth.ParseWebhookID("webhook", r.PathValue("id"))
	if err != nil {
		return berth.Webhook{}, err
	}
	noteTarget(r, id)
	return h.cfg.Store.FindWebhookByID(r.Context(), id)
}

// createWebhook subscribes a URL to events.
//
// POST /api/v1/webhooks {"url", "events", "description"} → 201 with the
// webhook and its secret. Needs owner on registry; invalid for a URL that is
// not https (or http on loopback), or that names an address Outbound
// refuses, and for unknown event types.
func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "creating a webhook"); err != nil {
		return err
	}
	var req CreateWebhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	events, err := berth.ParseEventTypes(req.Events)
	if err != nil {
		return err
	}
	if err := h.cfg.Outbound.CheckURL("webhook", req.URL); err != nil {
		return err
	}
	hook, err := berth.NewWebhook(h.rand, req.URL, events, req.Description, h.now())
	if err != nil {
		return err
	}
	if err := h.cfg.Store.CreateWebhook(r.Context(), hook); err != nil {
		return err
	}
	noteTarget(r, hook.ID)
	h.changed(r, c, "webhook created", slog.String("webhook", hook.ID), slog.String("host", webhookHost(hook.URL)))
	return writeJSON(w, http.StatusCreated, NewWebhook{Webhook: hook, Secret: hook.Secret.Reveal()})
}

// webhookHost is what the log records of a webhook's URL: its scheme and
// host. Receivers often carry their token in the path (chat webhooks), so the
// path is never logged.
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// listWebhooks lists every webhook.
//
// GET /api/v1/webhooks. Needs owner on registry.
func (h *handler) listWebhooks(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "listing webhooks"); err != nil {
		return err
	}
	hooks, err := h.cfg.Store.FindWebhooks(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, WebhookList{Webhooks: hooks})
}

// showWebhook shows one webhook, without its secret.
//
// GET /api/v1/webhooks/{id}. Needs owner on registry.
func (h *handler) showWebhook(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "reading a webhook"); err != nil {
		return err
	}
	hook, err := h.webhookByID(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, hook)
}

// deleteWebhook deletes a webhook and its queued and logged deliveries.
//
// DELETE /api/v1/webhooks/{id} → the webhook as it was. Needs owner on
// registry.
func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "deleting a webhook"); err != nil {
		return err
	}
	hook, err := h.webhookByID(r)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteWebhook(r.Context(), hook.ID); err != nil {
		return err
	}
	h.changed(r, c, "webhook deleted", slog.String("webhook", hook.ID), slog.String("host", webhookHost(hook.URL)))
	return writeJSON(w, http.StatusOK, hook)
}

// listDeliveries returns a webhook's delivery log, newest first.
//
// GET /api/v1/webhooks/{id}/deliveries[?limit=N]. Needs owner on registry.
func (h *handler) listDeliveries(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "reading a webhook's deliveries"); err != nil {
		return err
	}
	limit, err := parseLimit(r.URL.Query(), defaultDeliveries, maxDeliveries)
	if err != nil {
		return err
	}
	hook, err := h.webhookByID(r)
	if err != nil {
		return err
	}
	ds, err := h.cfg.Store.FindDeliveries(r.Context(), hook.ID, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, DeliveryList{Deliveries: ds})
}

// redeliver queues a delivered or failed delivery's event again, behind the
// webhook's other deliveries.
//
// POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver → 202 with the
// new delivery. Needs owner on registry; conflict while the delivery is still
// pending.
func (h *handler) redeliver(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "redelivering a webhook event"); err != nil {
		return err
	}
	hook, err := h.webhookByID(r)
	if err != nil {
		return err
	}
	id, err := berth.ParseWebhookID("delivery", r.PathValue("delivery"))
	if err != nil {
		return err
	}
	d, err := h.cfg.Store.FindDeliveryByID(ctx, id)
	if err == nil && d.WebhookID != hook.ID {
		err = berth.Errorf(berth.CodeNotFound, "webhook %s has no delivery %s", hook.ID, id)
	}
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "webhook %s has no delivery %s", hook.ID, id).
			WithHint("berth webhook deliveries %s lists its deliveries", hook.ID)
	}
	if err != nil {
		return err
	}
	again, err := d.Redelivery(h.rand, h.now())
	if err != nil {
		return err
	}
	if _, err := h.cfg.Store.EnqueueDeliveries(ctx, "", []berth.Delivery{again}); err != nil {
		return err
	}
	h.changed(r, c, "webhook event redelivered", slog.String("webhook", hook.ID), slog.String("delivery_id", d.ID),
		slog.String("redelivery_id", again.ID))
	return writeJSON(w, http.StatusAccepted, again)
}
