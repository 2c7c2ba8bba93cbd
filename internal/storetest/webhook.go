package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// The WebhookStore tests, as the contract in webhook.go of package berth
// states it. Where it leaves a choice open, the suite settles it:
//   - a webhook reads back exactly as created, its secret's value included;
//   - a delivery reads back exactly as enqueued and updated, zero times
//     staying zero;
//   - ClaimDueDeliveries with limit 0 returns an empty slice.

func webhookN(n int, created int, events ...berth.EventType) berth.Webhook {
	return berth.Webhook{
		ID:          fmt.Sprintf("d1000000-0000-4000-8000-%012d", n),
		URL:         fmt.Sprintf("https://hooks.example.com/%d", n),
		Events:      events,
		Description: fmt.Sprintf("hook %d", n),
		Secret:      berth.WebhookSecretOf(fmt.Sprintf("brw_secret%d", n)),
		Created:     at(created),
	}
}

var deliveryCounter int

func deliveryOf(w berth.Webhook, event string, created int) berth.Delivery {
	deliveryCounter++
	return berth.Delivery{
		ID:          fmt.Sprintf("e1000000-0000-4000-8000-%012d", deliveryCounter),
		WebhookID:   w.ID,
		EventID:     "event-" + event,
		EventType:   berth.EventImagePushed,
		Subject:     "repositories/" + event,
		Body:        []byte(`{"id":"` + event + `"}`),
		Status:      berth.DeliveryPending,
		NextAttempt: at(created),
		Created:     at(created),
	}
}

func enqueue(t *testing.T, s berth.MetadataStore, ds ...berth.Delivery) []berth.Delivery {
	t.Helper()
	ok, err := s.EnqueueDeliveries(ctx(t), "", ds)
	must(t, err)
	if !ok {
		t.Fatal("EnqueueDeliveries without a once key returned false")
	}
	return ds
}

func claimedIDs(t *testing.T, s berth.MetadataStore, now time.Time, limit int) []string {
	t.Helper()
	ds, err := s.ClaimDueDeliveries(ctx(t), now, time.Minute, limit)
	must(t, err)
	if ds == nil {
		t.Fatal("ClaimDueDeliveries returned nil, want an empty slice")
	}
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.EventID)
		wantTime(t, "a claimed delivery's NextAttempt", d.NextAttempt, now.Add(time.Minute))
	}
	return ids
}

func wantDelivery(t *testing.T, what string, got, want berth.Delivery) {
	t.Helper()
	if got.ID != want.ID || got.WebhookID != want.WebhookID || got.Seq != want.Seq || got.EventID != want.EventID ||
		got.EventType != want.EventType || got.Subject != want.Subject || string(got.Body) != string(want.Body) ||
		got.Status != want.Status || got.Attempts != want.Attempts || !got.NextAttempt.Equal(want.NextAttempt) ||
		!got.LastAttempt.Equal(want.LastAttempt) || got.LastHTTPStatus != want.LastHTTPStatus || got.LastError != want.LastError ||
		!got.Created.Equal(want.Created) || !got.Completed.Equal(want.Completed) || got.RedeliveryOf != want.RedeliveryOf {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if want.LastAttempt.IsZero() != got.LastAttempt.IsZero() || want.Completed.IsZero() != got.Completed.IsZero() {
		t.Errorf("%s: zero times do not read back as zero", what)
	}
}

var webhookTests = []test{
	{"SetSecret", func(t *testing.T, s berth.MetadataStore) {
		w1, w2 := webhookN(1, 10), webhookN(2, 20)
		must(t, s.CreateWebhook(ctx(t), w1))
		must(t, s.CreateWebhook(ctx(t), w2))
		must(t, s.SetWebhookSecret(ctx(t), w1.ID, berth.WebhookSecretOf("sealed:v1:abc")))
		got, err := s.FindWebhookByID(ctx(t), w1.ID)
		must(t, err)
		if got.Secret.Reveal() != "sealed:v1:abc" || got.URL != w1.URL {
			t.Errorf("after SetWebhookSecret: %+v", got)
		}
		if got, err := s.FindWebhookByID(ctx(t), w2.ID); err != nil || got.Secret.Reveal() != w2.Secret.Reveal() {
			t.Errorf("the other webhook changed: %+v, %v", got, err)
		}
		wantCode(t, "SetWebhookSecret of an unknown id",
			s.SetWebhookSecret(ctx(t), "d1000000-0000-4000-8000-000000000009", berth.WebhookSecretOf("x")), berth.CodeNotFound)
	}},
	{"CreateFindDelete", func(t *testing.T, s berth.MetadataStore) {
		if ws, err := s.FindWebhooks(ctx(t)); err != nil || ws == nil || len(ws) != 0 {
			t.Fatalf("FindWebhooks on an empty store = %v, %v; want an empty slice", ws, err)
		}
		w2 := webhookN(2, 10, berth.EventImagePushed)
		w1 := webhookN(1, 20, berth.EventSecretExpiring, berth.EventAuthDenied)
		must(t, s.CreateWebhook(ctx(t), w2))
		must(t, s.CreateWebhook(ctx(t), w1))
		wantCode(t, "CreateWebhook with an existing id", s.CreateWebhook(ctx(t), w1), berth.CodeConflict)

		got, err := s.FindWebhookByID(ctx(t), w1.ID)
		must(t, err)
		if got.ID != w1.ID || got.URL != w1.URL || got.Description != w1.Description || !slices.Equal(got.Events, w1.Events) ||
			got.Secret.Reveal() != w1.Secret.Reveal() || !got.Created.Equal(w1.Created) {
			t.Errorf("FindWebhookByID = %+v, want %+v", got, w1)
		}
		ws, err := s.FindWebhooks(ctx(t))
		must(t, err)
		if len(ws) != 2 || ws[0].ID != w2.ID || ws[1].ID != w1.ID || ws[1].Secret.Reveal() != w1.Secret.Reveal() {
			t.Errorf("FindWebhooks = %+v, want by created", ws)
		}
		_, err = s.FindWebhookByID(ctx(t), "d1000000-0000-4000-8000-000000000009")
		wantCode(t, "FindWebhookByID of an unknown id", err, berth.CodeNotFound)

		enqueue(t, s, deliveryOf(w1, "a", 30), deliveryOf(w2, "b", 30))
		must(t, s.DeleteWebhook(ctx(t), w1.ID))
		wantCode(t, "DeleteWebhook again", s.DeleteWebhook(ctx(t), w1.ID), berth.CodeNotFound)
		_, err = s.FindWebhookByID(ctx(t), w1.ID)
		wantCode(t, "FindWebhookByID of a deleted webhook", err, berth.CodeNotFound)
		if ds, err := s.FindDeliveries(ctx(t), w1.ID, 0); err != nil || len(ds) != 0 || ds == nil {
			t.Errorf("deliveries of a deleted webhook: %v, %v; want an empty slice", ds, err)
		}
		if ds, err := s.FindDeliveries(ctx(t), w2.ID, 0); err != nil || len(ds) != 1 {
			t.Errorf("the other webhook's deliveries: %v, %v", ds, err)
		}
	}},
	{"EnqueueAndFind", func(t *testing.T, s berth.MetadataStore) {
		w := webhookN(1, 0, berth.EventImagePushed)
		must(t, s.CreateWebhook(ctx(t), w))
		ds := enqueue(t, s, deliveryOf(w, "a", 1), deliveryOf(w, "b", 1))
		more := enqueue(t, s, deliveryOf(w, "c", 2))
		if !(ds[0].Seq > 0 && ds[1].Seq > ds[0].Seq && more[0].Seq > ds[1].Seq) {
			t.Errorf("seqs %d %d %d are not increasing", ds[0].Seq, ds[1].Seq, more[0].Seq)
		}
		got, err := s.FindDeliveryByID(ctx(t), ds[1].ID)
		must(t, err)
		wantDelivery(t, "FindDeliveryByID", got, ds[1])
		_, err = s.FindDeliveryByID(ctx(t), "e1000000-0000-4000-8000-999999999999")
		wantCode(t, "FindDeliveryByID of an unknown id", err, berth.CodeNotFound)

		log, err := s.FindDeliveries(ctx(t), w.ID, 0)
		must(t, err)
		if len(log) != 3 || log[0].EventID != "event-c" || log[2].EventID != "event-a" {
			t.Errorf("FindDeliveries = %+v, want newest first", log)
		}
		log, err = s.FindDeliveries(ctx(t), w.ID, 2)
		must(t, err)
		if len(log) != 2 || log[0].EventID != "event-c" {
			t.Errorf("FindDeliveries limit 2 = %+v", log)
		}

		// Nothing of a failed enqueue is stored.
		_, err = s.EnqueueDeliveries(ctx(t), "", []berth.Delivery{deliveryOf(w, "d", 3), deliveryOf(webhookN(9, 0), "e", 3)})
		wantCode(t, "EnqueueDeliveries to an unknown webhook", err, berth.CodeNotFound)
		_, err = s.EnqueueDeliveries(ctx(t), "", []berth.Delivery{deliveryOf(w, "f", 3), ds[0]})
		wantCode(t, "EnqueueDeliveries of an existing id", err, berth.CodeConflict)
		if log, _ := s.FindDeliveries(ctx(t), w.ID, 0); len(log) != 3 {
			t.Errorf("a failed enqueue stored %d deliveries", len(log)-3)
		}
	}},
	{"Once", func(t *testing.T, s berth.MetadataStore) {
		w := webhookN(1, 0, berth.EventSecretExpiring)
		must(t, s.CreateWebhook(ctx(t), w))
		ok, err := s.EnqueueDeliveries(ctx(t), "secret.expiring:s:30d", []berth.Delivery{deliveryOf(w, "a", 1)})
		if err != nil || !ok {
			t.Fatalf("first enqueue with a key: %v, %v", ok, err)
		}
		ok, err = s.EnqueueDeliveries(ctx(t), "secret.expiring:s:30d", []berth.Delivery{deliveryOf(w, "b", 2)})
		if err != nil || ok {
			t.Fatalf("second enqueue with the same key: %v, %v; want false", ok, err)
		}
		// A key is recorded also when no webhook takes the notice.
		ok, err = s.EnqueueDeliveries(ctx(t), "secret.expired:s", nil)
		if err != nil || !ok {
			t.Fatalf("enqueue of none with a key: %v, %v", ok, err)
		}
		if ok, _ := s.EnqueueDeliveries(ctx(t), "secret.expired:s", nil); ok {
			t.Error("the key of an empty enqueue was not recorded")
		}
		// A failed enqueue does not record its key.
		_, err = s.EnqueueDeliveries(ctx(t), "k", []berth.Delivery{deliveryOf(webhookN(9, 0), "x", 3)})
		wantCode(t, "enqueue to an unknown webhook", err, berth.CodeNotFound)
		if ok, err := s.EnqueueDeliveries(ctx(t), "k", nil); err != nil || !ok {
			t.Errorf("the key of a failed enqueue was recorded: %v, %v", ok, err)
		}
		if log, _ := s.FindDeliveries(ctx(t), w.ID, 0); len(log) != 1 || log[0].EventID != "event-a" {
			t.Errorf("deliveries %+v, want only the first", log)
		}
	}},
	{"ForgetOnce", func(t *testing.T, s berth.MetadataStore) {
		w := webhookN(1, 0, berth.EventConnectionVerifyFailed)
		must(t, s.CreateWebhook(ctx(t), w))
		must(t, s.ForgetOnce(ctx(t), "never-recorded"))
		for i, event := range []string{"a", "b"} {
			ok, err := s.EnqueueDeliveries(ctx(t), "connection.verify_failed/c", []berth.Delivery{deliveryOf(w, event, i)})
			if err != nil || !ok {
				t.Fatalf("enqueue %d with a key forgotten before: %v, %v", i, ok, err)
			}
			if ok, _ := s.EnqueueDeliveries(ctx(t), "connection.verify_failed/c", nil); ok {
				t.Fatalf("enqueue %d: the key was not recorded", i)
			}
			must(t, s.ForgetOnce(ctx(t), "connection.verify_failed/c"))
			must(t, s.ForgetOnce(ctx(t), "connection.verify_failed/c"))
		}
		// Only the key named is forgotten.
		if ok, err := s.EnqueueDeliveries(ctx(t), "connection.verify_failed/d", nil); err != nil || !ok {
			t.Fatalf("enqueue with another key: %v, %v", ok, err)
		}
		must(t, s.ForgetOnce(ctx(t), "connection.verify_failed/c"))
		if ok, _ := s.EnqueueDeliveries(ctx(t), "connection.verify_failed/d", nil); ok {
			t.Error("ForgetOnce of one key forgot another")
		}
		if log, _ := s.FindDeliveries(ctx(t), w.ID, 0); len(log) != 2 {
			t.Errorf("%d deliveries, want 2", len(log))
		}
	}},
	{"ClaimInOrder", func(t *testing.T, s berth.MetadataStore) {
		w1 := webhookN(1, 0, berth.EventImagePushed)
		w2 := webhookN(2, 0, berth.EventImagePushed)
		must(t, s.CreateWebhook(ctx(t), w1))
		must(t, s.CreateWebhook(ctx(t), w2))
		a := enqueue(t, s, deliveryOf(w1, "a1", 10), deliveryOf(w2, "b1", 10), deliveryOf(w1, "a2", 10))
		enqueue(t, s, deliveryOf(w2, "b2", 20))

		wantStrings(t, "claim with limit 0", claimedIDs(t, s, at(100), 0), nil)
		wantStrings(t, "claim before anything is due", claimedIDs(t, s, at(5), 10), nil)
		// One per webhook: its head.
		wantStrings(t, "first claim", claimedIDs(t, s, at(10), 10), []string{"event-a1", "event-b1"})
		// Leased: not claimed again until the lease ends.
		wantStrings(t, "claim during the lease", claimedIDs(t, s, at(30), 10), nil)
		wantStrings(t, "claim after the lease", claimedIDs(t, s, at(70), 1), []string{"event-a1"})

		// a1 delivered: a2 becomes w1's head; b1 failing keeps b2 waiting.
		d := a[0].Attempted(at(71), 204, nil)
		must(t, s.UpdateDelivery(ctx(t), d))
		got, err := s.FindDeliveryByID(ctx(t), d.ID)
		must(t, err)
		wantDelivery(t, "a delivered delivery", got, d)

		b1, err := s.FindDeliveryByID(ctx(t), a[1].ID)
		must(t, err)
		b1 = b1.Attempted(at(71), 500, nil)
		must(t, s.UpdateDelivery(ctx(t), b1))
		got, err = s.FindDeliveryByID(ctx(t), b1.ID)
		must(t, err)
		wantDelivery(t, "a delivery after a failed attempt", got, b1)

		wantStrings(t, "claim after a1 delivered", claimedIDs(t, s, at(72), 10), []string{"event-a2"})
		wantStrings(t, "claim when b1 is due again", claimedIDs(t, s, b1.NextAttempt, 10), []string{"event-b1"})

		// A failed delivery is given up and no longer holds the queue.
		b1.Status, b1.Completed, b1.NextAttempt = berth.DeliveryFailed, at(200), time.Time{}
		must(t, s.UpdateDelivery(ctx(t), b1))
		// a2, still pending, is due again since its lease ended.
		wantStrings(t, "claim after b1 failed", claimedIDs(t, s, at(300), 10), []string{"event-b2", "event-a2"})

		wantCode(t, "UpdateDelivery of an unknown id",
			s.UpdateDelivery(ctx(t), berth.Delivery{ID: "e1000000-0000-4000-8000-999999999999"}), berth.CodeNotFound)
	}},
}
