package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestWebhooks(t *testing.T) {
	ctx := context.Background()
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)

	r := call(t, s, admin, "POST", "/api/v1/webhooks", api.CreateWebhookRequest{URL: "https://hooks.example.com/services/T0/B0/pathtoken",
		Events: []string{"secret.expiring", "image.pushed"}, Description: "ops"})
	var created api.NewWebhook
	r.ok(t, http.StatusCreated, &created)
	hasFields(t, "a new webhook", fields(t, r.body), "id", "url", "events", "description", "created_at", "secret")
	if !strings.HasPrefix(created.Secret, berth.WebhookSecretPrefix) || len(created.Events) != 2 || !created.Created.Equal(apitest.Epoch) {
		t.Errorf("created %+v", created)
	}
	value := created.Secret

	for _, tc := range []struct {
		what string
		req  api.CreateWebhookRequest
	}{
		{"plain http", api.CreateWebhookRequest{URL: "http://hooks.example.com/", Events: []string{"image.pushed"}}},
		{"no events", api.CreateWebhookRequest{URL: "https://hooks.example.com/"}},
		{"an unknown event", api.CreateWebhookRequest{URL: "https://hooks.example.com/", Events: []string{"image.pulled"}}},
	} {
		if e := call(t, s, admin, "POST", "/api/v1/webhooks", tc.req).fails(t, berth.CodeInvalid); hint(e) == "" {
			t.Errorf("%s: no hint", tc.what)
		}
	}

	// Neither the list nor show ever holds the secret.
	r = call(t, s, admin, "GET", "/api/v1/webhooks", nil)
	var list api.WebhookList
	r.ok(t, http.StatusOK, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != created.ID || strings.Contains(string(r.body), value) {
		t.Errorf("list %s", r.body)
	}
	r = call(t, s, admin, "GET", "/api/v1/webhooks/"+created.ID, nil)
	r.ok(t, http.StatusOK, nil)
	if strings.Contains(string(r.body), value) || strings.Contains(string(r.body), `"secret"`) {
		t.Errorf("show holds the secret: %s", r.body)
	}
	call(t, s, admin, "GET", "/api/v1/webhooks/not-a-uuid", nil).fails(t, berth.CodeInvalid)
	call(t, s, admin, "GET", "/api/v1/webhooks/d1000000-0000-4000-8000-000000000009", nil).fails(t, berth.CodeNotFound)

	// A delivered delivery, as the dispatcher leaves it.
	d, err := berth.NewDelivery(rand.Reader, created.ID, berth.Event{ID: "ev-1", Type: berth.EventImagePushed, Subject: "repositories/team/app"},
		[]byte(`{}`), s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.EnqueueDeliveries(ctx, "", []berth.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/webhooks/" + created.ID + "/deliveries/"
	call(t, s, admin, "POST", base+d.ID+"/redeliver", nil).fails(t, berth.CodeConflict) // still pending
	if err := s.Store.UpdateDelivery(ctx, d.Attempted(s.Clock.Now(), 200, nil)); err != nil {
		t.Fatal(err)
	}
	r = call(t, s, admin, "GET", "/api/v1/webhooks/"+created.ID+"/deliveries", nil)
	var log api.DeliveryList
	r.ok(t, http.StatusOK, &log)
	if len(log.Deliveries) != 1 || log.Deliveries[0].Status != berth.DeliveryDelivered || log.Deliveries[0].LastHTTPStatus != 200 {
		t.Errorf("deliveries %s", r.body)
	}
	var entry map[string]any
	if err := json.Unmarshal(r.body, &entry); err == nil {
		hasFields(t, "a delivery", entry["deliveries"].([]any)[0].(map[string]any), "id", "event_id", "event_type", "status", "attempts",
			"last_http_status", "created_at", "last_attempt_at", "completed_at")
	}

	var again berth.Delivery
	call(t, s, admin, "POST", base+d.ID+"/redeliver", nil).ok(t, http.StatusAccepted, &again)
	if again.Status != berth.DeliveryPending || again.RedeliveryOf != d.ID || again.EventID != "ev-1" {
		t.Errorf("redelivery %+v", again)
	}
	call(t, s, admin, "POST", base+"e1000000-0000-4000-8000-000000000009/redeliver", nil).fails(t, berth.CodeNotFound)

	// Managing webhooks needs owner on registry.
	_, secret := s.AddPrincipal(t, "dev", apitest.Role{Role: "push", Scope: "team/*"})
	dev := creds{"dev", secret}
	call(t, s, dev, "GET", "/api/v1/webhooks", nil).fails(t, berth.CodeRoleMissing)
	call(t, s, dev, "POST", "/api/v1/webhooks", api.CreateWebhookRequest{URL: "https://a.example/", Events: []string{"image.pushed"}}).fails(t, berth.CodeRoleMissing)
	call(t, s, dev, "GET", "/api/v1/webhooks/"+created.ID+"/deliveries", nil).fails(t, berth.CodeRoleMissing)
	call(t, s, creds{}, "GET", "/api/v1/webhooks", nil).fails(t, berth.CodeCredentialsMissing)

	var deleted berth.Webhook
	call(t, s, admin, "DELETE", "/api/v1/webhooks/"+created.ID, nil).ok(t, http.StatusOK, &deleted)
	call(t, s, admin, "DELETE", "/api/v1/webhooks/"+created.ID, nil).fails(t, berth.CodeNotFound)

	// Changes are audited, with the webhook as target and never its secret.
	for _, a := range []berth.AuditAction{berth.AuditWebhookCreate, berth.AuditWebhookDelete, berth.AuditWebhookRedeliver} {
		events, err := s.Store.FindAuditEvents(ctx, berth.AuditFilter{Action: a, Result: berth.AuditAllowed})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].Target != created.ID {
			t.Errorf("%s events: %+v", a, events)
		}
	}
	events, _ := s.Store.FindAuditEvents(ctx, berth.AuditFilter{})
	for _, e := range events {
		for _, v := range e.Detail {
			if strings.Contains(v, value) {
				t.Errorf("audit event %s holds the webhook secret", e.Action)
			}
		}
	}
	if strings.Contains(s.Log.String(), value) {
		t.Error("the log holds the webhook secret")
	}
	if strings.Contains(s.Log.String(), "pathtoken") {
		t.Error("the log holds the webhook URL's path, where receivers keep their token")
	}
}

// A webhook may not point at the metadata service or the internal network
// (outbound.allow_private lifts the latter); loopback stays allowed.
func TestWebhookURLOutboundPolicy(t *testing.T) {
	s := apitest.New(t)
	for url, ok := range map[string]bool{
		"http://169.254.169.254/latest/meta-data/": false,
		"https://metadata.google.internal/x":       false,
		"https://10.0.0.8/hook":                    false,
		"https://[fd00::8]/hook":                   false,
		"http://127.0.0.1:9/hook":                  true,
		"https://hooks.example.com/x":              true,
	} {
		r := call(t, s, adminCreds(s), "POST", "/api/v1/webhooks", map[string]any{"url": url, "events": []string{"secret.expiring"}})
		if ok {
			r.ok(t, http.StatusCreated, nil)
		} else {
			r.fails(t, berth.CodeInvalid)
		}
	}
}
