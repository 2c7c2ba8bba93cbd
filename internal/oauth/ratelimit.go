package oauth

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// Failed-attempt limits: DefaultFailureLimit failures per key within
// DefaultFailureWindow, over at most DefaultLimiterKeys keys.
const (
	DefaultFailureLimit  = 10
	DefaultFailureWindow = time.Minute
	DefaultLimiterKeys   = 10_000
)

// Limiter limits failed authentication attempts per key: a key may fail limit
// times in a burst, and then once every window/limit, as a token bucket of limit
// failures refilling continuously over window does. It is kept as the generic
// cell rate algorithm (one time per key, exact in integer nanoseconds). Only
// failures count: a client that authenticates is never slowed down.
//
// Use one Limiter per kind of key — one for client ids, one for source
// addresses — so that keys of one kind never evict those of the other. The
// token endpoint asks Allow for both keys before it checks credentials, calls
// Fail on both when they are wrong, and Succeed on the client id only when they
// are right: a success from one address must not wipe the failures of other
// clients behind it (a NAT, or an attacker holding one valid secret).
//
// Memory is bounded: a key whose bucket has refilled is forgotten, and past
// MaxKeys the least recently failing key is evicted. Flooding the client-id
// limiter with made-up ids to evict a real one fails, because each of those
// attempts is also a failure of the flooder's address.
type Limiter struct {
	limit   int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recent failure

	// shared, when set, holds the failures of every process (replicas of
	// one registry); see Share.
	shared  LimitStore
	kind    string
	onError func(error)
}

// LimitStore shares failed-attempt state between the replicas of a registry:
// per kind of key ("client", "addr") and key, tat, the time when every
// failure of the key will have been forgiven (see bucket). Implementations
// only persist; the arithmetic is the Limiter's.
type LimitStore interface {
	// FailuresForgivenAt returns the key's tat, or the zero time when the
	// key has no failure recorded.
	FailuresForgivenAt(ctx context.Context, kind, key string) (time.Time, error)
	// RecordFailure moves the key's tat to min(max(tat, now) + interval,
	// now + window) (now + interval when it has none), atomically, and
	// returns it.
	RecordFailure(ctx context.Context, kind, key string, now time.Time, interval, window time.Duration) (time.Time, error)
	// ForgetFailures removes what is recorded of the key.
	ForgetFailures(ctx context.Context, kind, key string) error
}

// sharedTimeout bounds one call of the LimitStore; past it, the limiter
// decides on what this process saw.
const sharedTimeout = 2 * time.Second

// Share makes l count failures in store too, under kind, so that the limit
// holds across every process sharing store. A success costs one read of the
// store (in Allow) and no write, unless the key had failures. When the store
// fails, l decides on this process's own count and reports the error to
// onError (which may be nil). Call it before l is used.
func (l *Limiter) Share(store LimitStore, kind string, onError func(error)) *Limiter {
	l.shared, l.kind, l.onError = store, kind, onError
	return l
}

func (l *Limiter) sharedErr(err error) {
	if l.onError != nil {
		l.onError(fmt.Errorf("shared %s attempt limits: %w", l.kind, err))
	}
}

// bucket is one key's state: tat ("theoretical arrival time") is when the
// key's failures will all have been forgiven. Each failure pushes it one
// interval (window/limit) further from max(tat, now); a key may fail again
// while tat − now leaves room for one more interval within the window.
type bucket struct {
	key string
	tat time.Time
}

// NewLimiter returns a limiter of limit failures per window per key over at
// most maxKeys keys (the defaults where a value is not positive), reading the
// time from now (time.Now when nil).
func NewLimiter(limit int, window time.Duration, maxKeys int, now func() time.Time) *Limiter {
	if limit <= 0 {
		limit = DefaultFailureLimit
	}
	if window <= 0 {
		window = DefaultFailureWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultLimiterKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: limit, window: window, maxKeys: maxKeys, now: now, buckets: map[string]*list.Element{}}
}

// Allow reports whether key may attempt now; when it may not, retryAfter is
// how long until it may (RetryAfterSeconds turns it into a Retry-After).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if ok, wait := l.allowLocal(key); !ok || l.shared == nil {
		return ok, wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	tat, err := l.shared.FailuresForgivenAt(ctx, l.kind, key)
	if err != nil {
		l.sharedErr(err)
		return true, 0
	}
	if tat.IsZero() {
		return true, 0
	}
	l.merge(key, tat) // so that Succeed forgets it everywhere
	return l.allowLocal(key)
}

// merge raises key's local tat to tat, what the shared store holds.
func (l *Limiter) merge(key string, tat time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !tat.After(now) {
		return
	}
	if e, found := l.buckets[key]; found {
		b := e.Value.(*bucket)
		b.tat = later(b.tat, tat)
		l.lru.MoveToFront(e)
		return
	}
	for len(l.buckets) >= l.maxKeys {
		l.remove(l.lru.Back())
	}
	l.buckets[key] = l.lru.PushFront(&bucket{key: key, tat: tat})
}

// AllowLocal is Allow without asking the shared store: what this process
// knows of key's failures, its own and those Fail and Allow learnt from the
// other processes. For a check on every request, where a round trip to the
// shared store would cost more than the check saves.
func (l *Limiter) AllowLocal(key string) (ok bool, retryAfter time.Duration) {
	return l.allowLocal(key)
}

func (l *Limiter) allowLocal(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.buckets[key]
	if !found {
		return true, 0
	}
	b := e.Value.(*bucket)
	now := l.now()
	if !b.tat.After(now) {
		l.remove(e) // every failure forgiven: nothing left to remember
		return true, 0
	}
	wait := b.tat.Sub(now) - (l.window - l.interval())
	if wait <= 0 {
		return true, 0
	}
	return false, wait
}

// interval is how often a key may fail once its burst is spent.
func (l *Limiter) interval() time.Duration { return l.window / time.Duration(l.limit) }

// Fail records a failed attempt of key.
func (l *Limiter) Fail(key string) {
	l.failLocal(key)
	if l.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	tat, err := l.shared.RecordFailure(ctx, l.kind, key, l.now(), l.interval(), l.window)
	if err != nil {
		l.sharedErr(err)
		return
	}
	l.merge(key, tat)
}

func (l *Limiter) failLocal(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if e, found := l.buckets[key]; found {
		b := e.Value.(*bucket)
		// Failures past the limit (a caller that did not ask Allow) push
		// tat no further than one window ahead.
		if b.tat = later(b.tat, now).Add(l.interval()); b.tat.After(now.Add(l.window)) {
			b.tat = now.Add(l.window)
		}
		l.lru.MoveToFront(e)
		return
	}
	for len(l.buckets) >= l.maxKeys {
		l.remove(l.lru.Back())
	}
	l.buckets[key] = l.lru.PushFront(&bucket{key: key, tat: now.Add(l.interval())})
}

// Succeed forgets the failures of key. With a shared store, it writes there
// only when this process knows of failures of key: Allow, called first,
// learns of those of the other processes.
func (l *Limiter) Succeed(key string) {
	l.mu.Lock()
	e, found := l.buckets[key]
	if found {
		l.remove(e)
	}
	l.mu.Unlock()
	if !found || l.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := l.shared.ForgetFailures(ctx, l.kind, key); err != nil {
		l.sharedErr(err)
	}
}

// Len returns how many keys the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (l *Limiter) remove(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// TooManyAttempts returns the too_many_attempts error a transport answers with
// 429 and a Retry-After of RetryAfterSeconds(retryAfter). what names the
// limited key for people: "client ci-web", "address 203.0.113.7".
func TooManyAttempts(what string, retryAfter time.Duration) *berth.Error {
	secs := RetryAfterSeconds(retryAfter)
	return berth.Errorf(berth.CodeTooManyAttempts, "too many failed attempts from %s; try again in %d seconds", what, secs).
		WithHint("check the client id and secret (berth doctor shows what fails), then wait %d seconds", secs).
		WithDetail("retry_after", secs)
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1: the value of a
// Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// String describes the limits, for logs.
func (l *Limiter) String() string {
	return fmt.Sprintf("%d failures per %v per key, %d keys", l.limit, l.window, l.maxKeys)
}
