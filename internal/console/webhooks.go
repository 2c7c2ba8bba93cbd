package console

import (
	"net/http"
	"net/url"

	"github.com/berth-dev/berth"
)

func (h *Handler) routeWebhooks(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /webhooks", h.page(h.webhooks))
	mux.Handle("GET /webhooks/{id}", h.page(h.webhook))
	mux.Handle("POST /webhooks/{id}/deliveries/{delivery}/redeliver", h.page(h.redeliver))
}

// webhooks lists the webhook endpoints (owners only: the API decides).
func (h *Handler) webhooks(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ws, err := s.api.ListWebhooks(r.Context())
	if err != nil {
		return nil, err
	}
	return &view{Title: "Webhooks", Data: ws}, nil
}

type webhookData struct {
	berth.Webhook
	Deliveries []berth.Delivery
}

// webhook shows an endpoint and its latest deliveries with their status and
// the endpoint's answer, each with Redeliver.
func (h *Handler) webhook(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ctx := r.Context()
	wh, err := s.api.GetWebhook(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	ds, err := s.api.ListDeliveries(ctx, wh.ID, 50)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Webhook " + wh.URL, Page: "webhook", Data: webhookData{Webhook: wh, Deliveries: ds}}, nil
}

// redeliver queues a delivery again, as berth webhook redeliver does.
func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	id := r.PathValue("id")
	if _, err := s.api.Redeliver(r.Context(), id, r.PathValue("delivery")); err != nil {
		return nil, err
	}
	return h.back(w, r, "/webhooks/"+url.PathEscape(id))
}
