package webhook

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.EventPublisher = (*Publisher)(nil)

// Options configure a Publisher.
type Options struct {
	// Source is the registry's URL, the CloudEvents source of every event.
	Source string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand supplies event and delivery ids (crypto/rand.Reader when nil).
	Rand io.Reader
	// Logger receives failures; never a secret.
	Logger *slog.Logger
	// Nudge, when set, is called after deliveries were queued: the
	// Dispatcher's Nudge.
	Nudge func()
	// QueueSize bounds the events Publish holds before Run stores them
	// (1024 when zero).
	QueueSize int
}

// Publisher queues events for the webhooks subscribed to them.
type Publisher struct {
	store   berth.WebhookStore
	opts    Options
	rand    io.Reader
	queue   chan berth.Event
	dropped atomic.Int64
	denied  denyLimiter
}

// NewPublisher returns a publisher queuing deliveries in store.
func NewPublisher(store berth.WebhookStore, opts Options) *Publisher {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	return &Publisher{store: store, opts: opts, rand: berth.LockedReader(opts.Rand),
		queue: make(chan berth.Event, opts.QueueSize), denied: denyLimiter{seen: map[string]*denied{}}}
}

// Enqueue queues e (its ID and Time filled in when zero) for every webhook
// subscribed to its type, in one transaction, and returns whether it did:
// false when once, a notice's key (see berth.WebhookStore.EnqueueDeliveries),
// was recorded before.
func (p *Publisher) Enqueue(ctx context.Context, e berth.Event, once string) (bool, error) {
	if err := p.fill(&e); err != nil {
		return false, err
	}
	for try := 0; ; try++ {
		hooks, err := p.store.FindWebhooks(ctx)
		if err != nil {
			return false, fmt.Errorf("queue %s event: %w", e.Type, err)
		}
		var body []byte
		var ds []berth.Delivery
		for _, w := range hooks {
			if !w.Subscribes(e.Type) {
				continue
			}
			if body == nil {
				if body, err = Encode(p.opts.Source, e); err != nil {
					return false, fmt.Errorf("queue %s event: %w", e.Type, err)
				}
			}
			d, err := berth.NewDelivery(p.rand, w.ID, e, body, p.now())
			if err != nil {
				return false, err
			}
			ds = append(ds, d)
		}
		if len(ds) == 0 && once == "" {
			return true, nil
		}
		ok, err := p.store.EnqueueDeliveries(ctx, once, ds)
		if berth.IsCode(err, berth.CodeNotFound) && try == 0 {
			continue // a webhook was deleted meanwhile: look again
		}
		if err != nil {
			return false, fmt.Errorf("queue %s event: %w", e.Type, err)
		}
		if ok && len(ds) > 0 && p.opts.Nudge != nil {
			p.opts.Nudge()
		}
		return ok, nil
	}
}

func (p *Publisher) fill(e *berth.Event) error {
	if e.ID == "" {
		fresh, err := berth.NewEvent(p.rand, e.Type, e.Subject, e.Time, nil)
		if err != nil {
			return err
		}
		e.ID = fresh.ID
	}
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	return nil
}

// now is the clock as the store keeps it: UTC, in microseconds.
func (p *Publisher) now() time.Time { return p.opts.Now().UTC().Truncate(time.Microsecond) }

// Publish hands e to Run, which queues it, without waiting for the store.
// When Run has fallen QueueSize events behind, e is dropped, counted and
// logged.
func (p *Publisher) Publish(_ context.Context, e berth.Event) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	select {
	case p.queue <- e:
	default:
		n := p.dropped.Add(1)
		p.opts.Logger.Warn("webhook event dropped: the queue is full", slog.String("type", string(e.Type)), slog.Int64("dropped", n))
	}
}

// Dropped returns how many published events were dropped.
func (p *Publisher) Dropped() int64 { return p.dropped.Load() }

// Run stores the events Publish takes until ctx is done, then stores those
// still waiting, and returns.
func (p *Publisher) Run(ctx context.Context) {
	for {
		select {
		case e := <-p.queue:
			p.store1(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-p.queue:
					p.store1(e)
				default:
					return
				}
			}
		}
	}
}

func (p *Publisher) store1(e berth.Event) {
	// Not the publisher's context: a request's ends with its response.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Enqueue(ctx, e, ""); err != nil {
		p.dropped.Add(1)
		p.opts.Logger.Error("queue webhook event", slog.String("type", string(e.Type)), slog.Any("err", err))
	}
}

// Recorder returns an audit recorder that passes every event on to next and
// publishes the webhook events the audit stream carries:
// pipeline.permission_requested, and auth.denied for denied auth.* and
// registry.* events, at most one per principal (or client id) per
// berth.AuthDeniedInterval, the next one counting those left out. What every
// client meets on its way to success (berth.DeniedWorthANotice) is left out.
func (p *Publisher) Recorder(next berth.AuditRecorder) berth.AuditRecorder {
	return recorder{p: p, next: next}
}

type recorder struct {
	p    *Publisher
	next berth.AuditRecorder
}

func (r recorder) Record(e berth.AuditEvent) {
	r.next.Record(e)
	switch {
	case e.Action == berth.AuditPermissionRequested:
		r.p.Publish(context.Background(), berth.Event{Type: berth.EventPermissionRequested,
			Subject: "connections/" + e.Target, Time: e.Time, Data: auditData(e, 0)})
	case berth.DeniedWorthANotice(e):
		key := cmp.Or(e.ActorID, e.Actor, "source:"+e.Source)
		ok, suppressed := r.p.denied.allow(key, r.p.opts.Now())
		if !ok {
			return
		}
		subject := "principals/" + e.Actor
		if e.Actor == "" || e.ActorID == "" && berth.ValidatePrincipalName(e.Actor) != nil {
			subject = "clients/" + cmp.Or(e.Actor, "unknown")
		}
		r.p.Publish(context.Background(), berth.Event{Type: berth.EventAuthDenied, Subject: subject, Time: e.Time,
			Data: auditData(e, suppressed)})
	}
}

func auditData(e berth.AuditEvent, suppressed int) []byte {
	b, _ := json.Marshal(berth.AuditEventData{ // strings and a number: it cannot fail
		Action: e.Action, Actor: e.Actor, ActorID: e.ActorID, Target: e.Target, Reason: e.Reason, Source: e.Source,
		RequestID: e.RequestID, CredentialID: e.CredentialID, Connection: e.Connection, Pipeline: e.Pipeline,
		Run: e.Detail["ci_run"], Suppressed: suppressed,
	})
	return b
}

// denyLimiter lets through one auth.denied per key per interval and counts
// the others.
type denyLimiter struct {
	mu   sync.Mutex
	seen map[string]*denied
}

type denied struct {
	last       time.Time
	suppressed int
}

// maxDenyKeys bounds the limiter's memory; past it, keys whose interval has
// ended are forgotten.
const maxDenyKeys = 10000

func (l *denyLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.seen[key]
	if ok && now.Sub(d.last) < berth.AuthDeniedInterval {
		d.suppressed++
		return false, 0
	}
	if !ok {
		if len(l.seen) >= maxDenyKeys {
			for k, v := range l.seen {
				if now.Sub(v.last) >= berth.AuthDeniedInterval {
					delete(l.seen, k)
				}
			}
		}
		d = &denied{}
		l.seen[key] = d
	}
	n := d.suppressed
	d.last, d.suppressed = now, 0
	return true, n
}
