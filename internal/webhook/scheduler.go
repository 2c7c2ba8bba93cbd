package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// SecretSource lists what the expiry notices are about: principals, their
// secrets and the connections that use them. berth.MetadataStore is one.
type SecretSource interface {
	FindPrincipals(ctx context.Context, f berth.PrincipalFilter) ([]berth.Principal, error)
	FindSecrets(ctx context.Context, principalID string) ([]berth.Secret, error)
	FindConnections(ctx context.Context, f berth.ConnectionFilter) ([]berth.Connection, error)
}

// DefaultScheduleInterval is how often a Scheduler looks when not told.
const DefaultScheduleInterval = 15 * time.Minute

// Scheduler publishes secret.expiring and secret.expired, each notice once
// per secret (berth.SecretNotice decides which is due; the store's once keys
// make it once, across restarts and replicas). When Verify is set it also
// verifies every service connection and publishes connection.verify_failed
// for each that fails, once per failure episode, across restarts and
// replicas too. A Scheduler keeps no state of its own: any number of them
// may run on one store.
type Scheduler struct {
	Secrets   SecretSource
	Publisher *Publisher
	// Now is the clock of the notices (time.Now when nil).
	Now func() time.Time
	// Interval is how often Run looks (DefaultScheduleInterval when zero).
	Interval time.Duration
	Logger   *slog.Logger
	// Verify, when set, checks one connection; an error is a failed
	// verification, published with its reason code unless it was published
	// since the connection last passed, so that a connection that stays
	// broken is announced once, not every Interval.
	Verify func(ctx context.Context, c berth.Connection) error
	// Upstreams, when set, lists the pull-through cache's upstreams, whose
	// credentials with a recorded expiry get the same notices as secrets.
	Upstreams UpstreamSource
	// VerifyUpstream, when set with Upstreams, calls one upstream with its
	// stored credential; an error is published as upstream.verify_failed,
	// once per failure episode, as for connections.
	VerifyUpstream func(ctx context.Context, u berth.Upstream) error
	// Tokens, when set, lists people's personal access tokens, which get
	// the same notices as secrets (data kind "personal_access_token").
	Tokens TokenSource

	lastMu      sync.Mutex
	lastFailing []ConnectionVerifyData // the connections the last run found failing
	lastRun     time.Time              // when that run verified; zero: none has
}

// LastVerification returns the connections the last completed run of
// Verify found failing, by name, and when that run was; the zero time when
// no run has completed.
func (s *Scheduler) LastVerification() ([]ConnectionVerifyData, time.Time) {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	return slices.Clone(s.lastFailing), s.lastRun
}

// TokenSource lists a person's personal access tokens.
type TokenSource interface {
	FindPATs(ctx context.Context, principalID string) ([]berth.PersonalAccessToken, error)
}

// UpstreamSource lists the upstream registries of the pull-through cache.
type UpstreamSource interface {
	FindUpstreams(ctx context.Context) ([]berth.Upstream, error)
}

// RunOnce publishes the notices due at the clock's time and returns how many
// it queued for the first time.
func (s *Scheduler) RunOnce(ctx context.Context) (int, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	now = now.UTC().Truncate(time.Microsecond)
	sent := 0
	var upErr error // an upstream failure, reported after the connections are verified
	for p, err := range berth.AllPrincipals(ctx, s.Secrets, berth.PrincipalFilter{}) {
		if err != nil {
			return sent, fmt.Errorf("expiry notices: %w", err)
		}
		n, err := s.principal(ctx, p, now)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	if s.Upstreams != nil {
		// A failure here is reported, and does not stop the connections'
		// verification below.
		n, err := s.upstreamNotices(ctx, now)
		sent, upErr = sent+n, err
	}
	if s.Verify != nil {
		if err := s.verifyConnections(ctx, now); err != nil {
			return sent, errors.Join(upErr, err)
		}
	}
	return sent, upErr
}

// upstreamNotices publishes the upstreams' expiry notices and, with
// VerifyUpstream, their verification failures.
func (s *Scheduler) upstreamNotices(ctx context.Context, now time.Time) (int, error) {
	ups, err := s.Upstreams.FindUpstreams(ctx)
	if err != nil {
		return 0, fmt.Errorf("upstreams: %w", err)
	}
	n, err := s.upstreams(ctx, ups, now)
	if err != nil || s.VerifyUpstream == nil {
		return n, err
	}
	return n, s.verifyUpstreams(ctx, ups, now)
}

func (s *Scheduler) principal(ctx context.Context, p berth.Principal, now time.Time) (int, error) {
	secrets, err := s.Secrets.FindSecrets(ctx, p.ID)
	if err != nil {
		return 0, fmt.Errorf("expiry notices of %s: %w", p.Name, err)
	}
	var conns []berth.Connection // read once a notice is due
	sent := 0
	if s.Tokens != nil && p.Kind == berth.PrincipalUser {
		n, err := s.tokens(ctx, p, now)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	for _, sec := range secrets {
		typ, threshold, once, ok := berth.SecretNotice(sec, now)
		if !ok {
			continue
		}
		if conns == nil {
			if conns, err = s.Secrets.FindConnections(ctx, berth.ConnectionFilter{PrincipalID: p.ID}); err != nil {
				return sent, fmt.Errorf("expiry notices of %s: %w", p.Name, err)
			}
		}
		data := berth.SecretEventData{Principal: p.Name, PrincipalID: p.ID, SecretID: sec.ID, Hint: sec.Hint,
			ExpiresAt: sec.Expires, ThresholdDays: threshold}
		for _, c := range conns {
			if c.SecretID == sec.ID {
				data.Connections = append(data.Connections, c.Name)
			}
		}
		fresh, err := s.notify(ctx, typ, "principals/"+p.Name+"/secrets/"+sec.ID, now, data, once)
		if err != nil {
			return sent, err
		}
		if fresh {
			sent++
		}
	}
	return sent, nil
}

// tokens publishes the expiry notices of a person's tokens.
func (s *Scheduler) tokens(ctx context.Context, p berth.Principal, now time.Time) (int, error) {
	ts, err := s.Tokens.FindPATs(ctx, p.ID)
	if err != nil {
		return 0, fmt.Errorf("expiry notices of %s's tokens: %w", p.Name, err)
	}
	sent := 0
	for _, t := range ts {
		typ, threshold, once, ok := berth.PATNotice(t, now)
		if !ok {
			continue
		}
		data := berth.SecretEventData{Principal: p.Name, PrincipalID: p.ID, SecretID: t.ID, Hint: t.Hint, Kind: "personal_access_token",
			ExpiresAt: t.Expires, ThresholdDays: threshold}
		fresh, err := s.notify(ctx, typ, "principals/"+p.Name+"/tokens/"+t.ID, now, data, once)
		if err != nil {
			return sent, err
		}
		if fresh {
			sent++
		}
	}
	return sent, nil
}

// upstreams publishes the expiry notices of upstream credentials.
func (s *Scheduler) upstreams(ctx context.Context, ups []berth.Upstream, now time.Time) (int, error) {
	sent := 0
	for _, u := range ups {
		typ, threshold, once, ok := berth.UpstreamNotice(u, now)
		if !ok {
			continue
		}
		data := berth.SecretEventData{Upstream: u.Name, Username: u.Username, ExpiresAt: *u.ExpiresAt, ThresholdDays: threshold}
		fresh, err := s.notify(ctx, typ, "upstreams/"+u.Name, now, data, once)
		if err != nil {
			return sent, err
		}
		if fresh {
			sent++
		}
	}
	return sent, nil
}

// UpstreamVerifyData is the data of upstream.verify_failed.
type UpstreamVerifyData struct {
	Upstream string     `json:"upstream"`
	URL      string     `json:"url"`
	Reason   berth.Code `json:"reason"`
	Message  string     `json:"message"`
	Hint     string     `json:"hint,omitempty"`
}

// verifyUpstreams calls every upstream and publishes upstream.verify_failed
// for each that fails, once per failure episode (an upstream created
// again, with a new credential, starts a new one).
func (s *Scheduler) verifyUpstreams(ctx context.Context, ups []berth.Upstream, now time.Time) error {
	for _, u := range ups {
		once := string(berth.EventUpstreamVerifyFailed) + "/" + u.Name + "/" + strconv.FormatInt(u.Created.UnixMicro(), 10)
		err := s.episode(ctx, berth.EventUpstreamVerifyFailed, "upstreams/"+u.Name, once, now, s.VerifyUpstream(ctx, u),
			func(code berth.Code, message, hint string) any {
				return UpstreamVerifyData{Upstream: u.Name, URL: u.URL, Reason: code, Message: message, Hint: hint}
			})
		if err != nil {
			return fmt.Errorf("verify upstream %s: %w", u.Name, err)
		}
	}
	return nil
}

// episode follows one verification's failure episode: a pass (verr nil)
// forgets the once key, so that the next failure is announced again; a
// failure queues the event of typ about subject once per episode, with the
// data data makes of the refusal (an error that is not a *berth.Error is
// "internal error": its text is not for webhook receivers).
func (s *Scheduler) episode(ctx context.Context, typ berth.EventType, subject, once string, now time.Time, verr error,
	data func(code berth.Code, message, hint string) any) error {
	if verr == nil {
		return s.Publisher.store.ForgetOnce(ctx, once)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	message, hint := "internal error", ""
	if be := berth.AsError(verr); be != nil {
		message, hint = be.Message, be.Hint
	}
	_, err := s.notify(ctx, typ, subject, now, data(berth.ErrorCode(verr), message, hint), once)
	return err
}

// ConnectionVerifyData is the data of connection.verify_failed.
type ConnectionVerifyData struct {
	Connection string     `json:"connection"`
	Reason     berth.Code `json:"reason"`
	Message    string     `json:"message"`
	Hint       string     `json:"hint,omitempty"`
}

// verifyConnections verifies every enabled connection and publishes
// connection.verify_failed for each that fails, once per failure episode.
func (s *Scheduler) verifyConnections(ctx context.Context, now time.Time) error {
	conns, err := s.Secrets.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return fmt.Errorf("verify connections: %w", err)
	}
	failing := []ConnectionVerifyData{}
	for _, c := range conns {
		if c.Disabled {
			continue
		}
		err := s.episode(ctx, berth.EventConnectionVerifyFailed, "connections/"+c.Name, verifyFailedOnce(c), now, s.Verify(ctx, c),
			func(code berth.Code, message, hint string) any {
				d := ConnectionVerifyData{Connection: c.Name, Reason: code, Message: message, Hint: hint}
				failing = append(failing, d)
				return d
			})
		if err != nil {
			return fmt.Errorf("verify connection %s: %w", c.Name, err)
		}
	}
	s.lastMu.Lock()
	s.lastFailing, s.lastRun = failing, now
	s.lastMu.Unlock()
	return nil
}

// verifyFailedOnce is the once key of c's connection.verify_failed: recorded
// when a failure is announced, forgotten when a verification passes.
func verifyFailedOnce(c berth.Connection) string {
	return string(berth.EventConnectionVerifyFailed) + "/" + c.ID
}

// Run calls RunOnce at once and then every Interval until ctx is done.
func (s *Scheduler) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultScheduleInterval
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			logger.Error("webhook schedule", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// notify queues an event of typ about subject with data, at most once per
// once key, and reports whether it was queued now (false: sent before).
func (s *Scheduler) notify(ctx context.Context, typ berth.EventType, subject string, now time.Time, data any, once string) (bool, error) {
	e, err := berth.NewEvent(s.Publisher.rand, typ, subject, now, data)
	if err != nil {
		return false, err
	}
	return s.Publisher.Enqueue(ctx, e, once)
}
