package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Client posts deliveries (a client with a 10 s timeout when nil). It
	// never follows a redirect: a 3xx answer is a failed attempt.
	Client *http.Client
	// Now is the clock of attempts, signatures and retries (time.Now when
	// nil).
	Now func() time.Time
	// Logger receives failed attempts; never a secret.
	Logger *slog.Logger
	// Poll is how often Run looks for due deliveries when not nudged
	// (5 s when zero).
	Poll time.Duration
	// Timeout bounds one attempt (10 s when zero).
	Timeout time.Duration
	// Batch is how many webhooks are attempted at once (16 when zero).
	Batch int
	// UserAgent is sent with every delivery ("berth-webhook" when empty).
	UserAgent string
	// Outbound decides which addresses deliveries may connect to, once a
	// webhook's host resolved (the default client's dialer asks it).
	Outbound berth.OutboundPolicy
}

// Dispatcher posts queued deliveries to their webhooks, one at a time per
// webhook, in queue order.
type Dispatcher struct {
	store  berth.WebhookStore
	opts   DispatcherOptions
	client *http.Client
	nudge  chan struct{}
}

// NewDispatcher returns a dispatcher of the deliveries queued in store.
func NewDispatcher(store berth.WebhookStore, opts DispatcherOptions) *Dispatcher {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 16
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berth-webhook"
	}
	c := &http.Client{Timeout: opts.Timeout, Transport: opts.Outbound.Transport("webhook")}
	if opts.Client != nil {
		cp := *opts.Client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Dispatcher{store: store, opts: opts, client: c, nudge: make(chan struct{}, 1)}
}

// Nudge makes Run look for due deliveries now rather than at its next poll.
func (d *Dispatcher) Nudge() {
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// lease is how long a claimed delivery is left to this dispatcher: longer
// than an attempt may take.
func (d *Dispatcher) lease() time.Duration { return d.opts.Timeout + 30*time.Second }

// maxRounds bounds one RunOnce, so that a steady stream of deliveries to a
// fast receiver does not keep it from returning.
const maxRounds = 64

// RunOnce attempts every delivery due at the clock's time: the head of each
// webhook's queue, and after a success the next one, round after round,
// until none is due. It returns how many attempts it made.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	attempts := 0
	for range maxRounds {
		due, err := d.store.ClaimDueDeliveries(ctx, d.now(), d.lease(), d.opts.Batch)
		if err != nil {
			return attempts, fmt.Errorf("claim webhook deliveries: %w", err)
		}
		if len(due) == 0 {
			return attempts, nil
		}
		var wg sync.WaitGroup
		for _, dl := range due { // heads of distinct webhooks
			wg.Go(func() { d.attempt(ctx, dl) })
		}
		wg.Wait()
		attempts += len(due)
	}
	return attempts, nil
}

// Run attempts due deliveries until ctx is done: when nudged, and every
// Poll.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.opts.Logger.Error("deliver webhooks", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-d.nudge:
		case <-t.C:
		}
	}
}

func (d *Dispatcher) now() time.Time { return d.opts.Now().UTC().Truncate(time.Microsecond) }

// attempt posts one delivery and records the outcome.
func (d *Dispatcher) attempt(ctx context.Context, dl berth.Delivery) {
	w, err := d.store.FindWebhookByID(ctx, dl.WebhookID)
	if berth.IsCode(err, berth.CodeNotFound) {
		return // deleted since, with its deliveries
	}
	if err != nil {
		d.opts.Logger.Error("deliver webhook", slog.String("webhook", dl.WebhookID), slog.String("delivery", dl.ID), slog.Any("err", err))
		return // due again when the lease ends
	}
	now := d.now()
	status, err := d.post(ctx, w, dl, now)
	if ctx.Err() != nil {
		return // shutting down: not the receiver's failure; due again after the lease
	}
	next := dl.Attempted(now, status, err)
	// The outcome is recorded even if ctx ends now: the attempt was made.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.store.UpdateDelivery(rctx, next); err != nil && !berth.IsCode(err, berth.CodeNotFound) {
		d.opts.Logger.Error("record webhook delivery", slog.String("webhook", w.ID), slog.String("delivery", dl.ID), slog.Any("err", err))
		return
	}
	attrs := []slog.Attr{slog.String("webhook", w.ID), slog.String("delivery", dl.ID), slog.String("event", string(dl.EventType)),
		slog.Int("attempt", next.Attempts), slog.Int("http_status", status)}
	switch next.Status {
	case berth.DeliveryDelivered:
		d.opts.Logger.LogAttrs(ctx, slog.LevelDebug, "webhook delivered", attrs...)
	case berth.DeliveryFailed:
		d.opts.Logger.LogAttrs(ctx, slog.LevelError, "webhook delivery given up", append(attrs, slog.String("error", next.LastError))...)
	default:
		d.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "webhook delivery failed; retrying",
			append(attrs, slog.String("error", next.LastError), slog.Time("next_attempt", next.NextAttempt))...)
	}
}

// maxAnswer bounds how much of an answer is read (and discarded).
const maxAnswer = 64 << 10

// post sends the delivery signed at now and returns the answer's status.
func (d *Dispatcher) post(ctx context.Context, w berth.Webhook, dl berth.Delivery, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", berth.CloudEventsContentType)
	req.Header.Set("User-Agent", d.opts.UserAgent)
	req.Header.Set(berth.WebhookSignatureHeader, berth.SignWebhook(w.Secret.Reveal(), now, dl.Body))
	req.Header.Set("Berth-Delivery", dl.ID)
	req.Header.Set("Berth-Event", string(dl.EventType))
	resp, err := d.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // drop "Post URL:": the log names the webhook
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	return resp.StatusCode, nil
}
