package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
	"github.com/berth-dev/berth/internal/webhook"
)

var epoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
func newClock() *testclock.Clock { return testclock.New(epoch) }

// received is one request the receiver took.
type received struct {
	event     webhook.CloudEvent
	status    int
	signedAt  time.Time
	delivery  string
	sigErr    error
	mediaType string
}

// receiver is a loopback webhook endpoint that verifies every signature with
// the test's clock and answers fail[i] (or 204) to the i-th request.
type receiver struct {
	t      *testing.T
	clock  *testclock.Clock
	secret string // set once the webhook exists
	fail   []int
	srv    *httptest.Server

	mu   sync.Mutex
	got  []received
	seen chan struct{}
}

func newReceiver(t *testing.T, c *testclock.Clock, fail ...int) *receiver {
	r := &receiver{t: t, clock: c, fail: fail, seen: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev webhook.CloudEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("body %q is not a CloudEvent: %v", body, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := received{event: ev, delivery: req.Header.Get("Berth-Delivery"), mediaType: req.Header.Get("Content-Type"),
		sigErr: berth.VerifyWebhookSignature(r.secret, req.Header.Get(berth.WebhookSignatureHeader), body, r.clock.Now(), 0)}
	rec.status = http.StatusNoContent
	if n := len(r.got); n < len(r.fail) {
		rec.status = r.fail[n]
	}
	r.got = append(r.got, rec)
	w.WriteHeader(rec.status)
	select {
	case r.seen <- struct{}{}:
	default:
	}
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// wait waits for the receiver to take a request, failing after a while: the
// only waiting these tests do is for real goroutines, never for the clock.
func (r *receiver) wait() received {
	r.t.Helper()
	select {
	case <-r.seen:
	case <-time.After(10 * time.Second):
		r.t.Fatal("no delivery arrived")
	}
	got := r.requests()
	return got[len(got)-1]
}

func openStore(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t *testing.T) *sqlite.DB {
	return openStore(t, filepath.Join(t.TempDir(), "metadata.db"))
}

func addWebhook(t *testing.T, s berth.WebhookStore, r *receiver, c *testclock.Clock, events ...berth.EventType) berth.Webhook {
	t.Helper()
	w, err := berth.NewWebhook(rand.Reader, r.srv.URL+"/hook", events, "test", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	r.secret = w.Secret.Reveal()
	return w
}

const source = "https://registry.example.com"

func newPublisher(s berth.WebhookStore, c *testclock.Clock) *webhook.Publisher {
	return webhook.NewPublisher(s, webhook.Options{Source: source, Now: c.Now})
}

func newDispatcher(s berth.WebhookStore, c *testclock.Clock) *webhook.Dispatcher {
	return webhook.NewDispatcher(s, webhook.DispatcherOptions{Now: c.Now})
}

func imagePushed(repo string) berth.Event {
	return berth.ImageEvent(berth.EventImagePushed, berth.ImageEventData{Repository: repo, Tag: "v1"})
}

func enqueue(t *testing.T, p *webhook.Publisher, e berth.Event) {
	t.Helper()
	if _, err := p.Enqueue(context.Background(), e, ""); err != nil {
		t.Fatal(err)
	}
}

func runOnce(t *testing.T, d *webhook.Dispatcher, want int, when string) {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%s: %d attempts, want %d", when, n, want)
	}
}

// TestRetriesInOrder: a receiver failing the first attempts gets them again
// after 30 s and 1 m, and the second event only after the first got through.
func TestRetriesInOrder(t *testing.T) {
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c, 500, 503)
	w := addWebhook(t, s, r, c, berth.EventImagePushed)
	// Another webhook, not subscribed: it gets nothing.
	other := newReceiver(t, c)
	addWebhook(t, s, other, c, berth.EventSecretExpired)
	r.secret = w.Secret.Reveal()

	p, d := newPublisher(s, c), newDispatcher(s, c)
	enqueue(t, p, imagePushed("team/first"))
	enqueue(t, p, imagePushed("team/second"))

	runOnce(t, d, 1, "at once") // first: 500; second waits behind it
	c.Advance(29 * time.Second)
	runOnce(t, d, 0, "before the first backoff ends")
	c.Advance(time.Second)
	runOnce(t, d, 1, "after 30s") // first: 503
	c.Advance(59 * time.Second)
	runOnce(t, d, 0, "before the second backoff ends")
	c.Advance(time.Second)
	runOnce(t, d, 2, "after 1m more") // first: 204, then second: 204

	got := r.requests()
	subjects := []string{}
	for _, g := range got {
		subjects = append(subjects, g.event.Subject)
		if g.sigErr != nil {
			t.Errorf("signature of %s: %v", g.event.Subject, g.sigErr)
		}
		if g.mediaType != berth.CloudEventsContentType {
			t.Errorf("Content-Type %q", g.mediaType)
		}
	}
	want := []string{"repositories/team/first", "repositories/team/first", "repositories/team/first", "repositories/team/second"}
	if len(subjects) != len(want) {
		t.Fatalf("received %v, want %v", subjects, want)
	}
	for i := range want {
		if subjects[i] != want[i] {
			t.Fatalf("received %v, want %v", subjects, want)
		}
	}
	// Every attempt of one event carries the same CloudEvents id.
	if got[0].event.ID != got[2].event.ID || got[0].event.ID == got[3].event.ID {
		t.Errorf("event ids %q %q %q %q", got[0].event.ID, got[1].event.ID, got[2].event.ID, got[3].event.ID)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the unsubscribed webhook got %d requests", n)
	}

	// The structure of a CloudEvent.
	ev := got[3].event
	if ev.SpecVersion != "1.0" || ev.Source != source || ev.Type != "dev.berth.image.pushed" || ev.DataContentType != "application/json" ||
		ev.ID == "" || ev.Time.IsZero() {
		t.Errorf("CloudEvent %+v", ev)
	}
	var data berth.ImageEventData
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.Repository != "team/second" || data.Tag != "v1" {
		t.Errorf("data %s: %+v, %v", ev.Data, data, err)
	}

	// The delivery log.
	log, err := s.FindDeliveries(context.Background(), w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Fatalf("log %+v", log)
	}
	first, second := log[1], log[0]
	if first.Status != berth.DeliveryDelivered || first.Attempts != 3 || first.LastHTTPStatus != 204 || first.LastError != "" ||
		!first.Completed.Equal(epoch.Add(90*time.Second)) || !first.Created.Equal(epoch) {
		t.Errorf("first delivery %+v", first)
	}
	if second.Status != berth.DeliveryDelivered || second.Attempts != 1 {
		t.Errorf("second delivery %+v", second)
	}
}

// TestGivesUp: after the last attempt a delivery fails, and the next one
// goes.
func TestGivesUp(t *testing.T) {
	c := newClock()
	s := newStore(t)
	fail := make([]int, berth.WebhookMaxAttempts)
	for i := range fail {
		fail[i] = 500
	}
	r := newReceiver(t, c, fail...)
	w := addWebhook(t, s, r, c, berth.EventImagePushed)
	p, d := newPublisher(s, c), newDispatcher(s, c)
	enqueue(t, p, imagePushed("team/doomed"))
	enqueue(t, p, imagePushed("team/next"))
	for i := 1; i < berth.WebhookMaxAttempts; i++ {
		runOnce(t, d, 1, "a failing attempt")
		c.Advance(berth.WebhookRetryDelay(i))
	}
	runOnce(t, d, 2, "the last attempt, then the next delivery")
	log, _ := s.FindDeliveries(context.Background(), w.ID, 0)
	if len(log) != 2 || log[1].Status != berth.DeliveryFailed || log[1].Attempts != berth.WebhookMaxAttempts ||
		log[1].LastHTTPStatus != 500 || log[1].LastError == "" || log[0].Status != berth.DeliveryDelivered {
		t.Errorf("log %+v", log)
	}
}

// TestRestart: deliveries queued before a restart are delivered by a new
// dispatcher on the same database.
func TestRestart(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "metadata.db")
	r := newReceiver(t, c, 500)
	s1, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	addWebhook(t, s1, r, c, berth.EventImagePushed)
	enqueue(t, newPublisher(s1, c), imagePushed("team/a"))
	enqueue(t, newPublisher(s1, c), imagePushed("team/b"))
	runOnce(t, newDispatcher(s1, c), 1, "before the restart") // a: 500
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, path)
	d := newDispatcher(s2, c)
	runOnce(t, d, 0, "after the restart, before a's retry is due")
	c.Advance(berth.WebhookRetryBase)
	runOnce(t, d, 2, "after the restart")
	got := r.requests()
	if len(got) != 3 || got[1].event.Subject != "repositories/team/a" || got[2].event.Subject != "repositories/team/b" {
		t.Errorf("received %+v", got)
	}
}

// TestRunNudged: Publish, Run and the dispatcher's Run deliver without
// anyone calling RunOnce.
func TestRunNudged(t *testing.T) {
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	addWebhook(t, s, r, c, berth.EventImagePushed)
	d := webhook.NewDispatcher(s, webhook.DispatcherOptions{Now: c.Now, Poll: time.Hour})
	p := webhook.NewPublisher(s, webhook.Options{Source: source, Now: c.Now, Nudge: d.Nudge})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	wg.Go(func() { d.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	p.Publish(context.Background(), imagePushed("team/app"))
	if got := r.wait(); got.event.Subject != "repositories/team/app" || got.sigErr != nil {
		t.Errorf("received %+v", got)
	}
}

// TestDeliveryRefusedOnTheInternalNetwork: a webhook whose URL leads to a
// private address (a name resolving there, or one stored before the rule)
// is never connected to: the attempt fails, saying why.
func TestDeliveryRefusedOnTheInternalNetwork(t *testing.T) {
	s, c := newStore(t), newClock()
	w, err := berth.NewWebhook(rand.Reader, "https://10.255.255.1/hook", []berth.EventType{berth.EventImagePushed}, "", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	enqueue(t, newPublisher(s, c), imagePushed("team/app"))
	runOnce(t, newDispatcher(s, c), 1, "first attempt")
	ds, err := s.FindDeliveries(context.Background(), w.ID, 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	if !strings.Contains(ds[0].LastError, "private address") || ds[0].Status == berth.DeliveryDelivered {
		t.Errorf("delivery %+v", ds[0])
	}
}
