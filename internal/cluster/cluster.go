package cluster

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/postgres"
)

// Replica is one berth serve process of a cluster.
type Replica struct {
	DB     *postgres.DB
	Sealer *oauth.Sealer
	Logger *slog.Logger
}

// Invalidating wraps the management API h: after each request that may have
// changed something (any method but GET, HEAD and OPTIONS) and was answered
// below 400, it notifies every replica, this one included, that the state
// its identity provider caches changed. The replica that made the change has
// already dropped its own cache (the API calls Provider.Invalidate).
func (r *Replica) Invalidating(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, req)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, req)
		if sw.status >= 400 {
			return
		}
		// The response is written; a slow database delays only this
		// handler's return, and the 1 s StateTTL bounds a lost notice.
		if err := r.DB.Notify(context.WithoutCancel(req.Context()), postgres.PayloadState); err != nil {
			r.Logger.ErrorContext(req.Context(), "notify the other replicas of a change", slog.Any("err", err))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Listen applies the notifications of the other replicas until ctx is done:
// invalidate drops the identity provider's cached state, reloadKeys reads
// the signing keys again. After a reconnection both run, since what was
// announced meanwhile is lost. ready, when not nil, is closed once listening.
func (r *Replica) Listen(ctx context.Context, invalidate func(), reloadKeys func() error, ready chan<- struct{}) {
	r.DB.Listen(ctx, func(what string) {
		switch what {
		case postgres.PayloadKeys:
			if err := reloadKeys(); err != nil {
				r.Logger.Error("reload signing keys after a notification", slog.Any("err", err))
			}
		case postgres.PayloadRegistry:
			// The DB's read cache has dropped what it kept; the identity
			// provider's state did not change.
		case postgres.PayloadReconnected:
			invalidate()
			if err := reloadKeys(); err != nil {
				r.Logger.Error("reload signing keys after reconnecting", slog.Any("err", err))
			}
		default:
			invalidate()
		}
	}, func(err error) {
		r.Logger.Warn("cluster notifications interrupted; reconnecting (cached state still expires within 1s)", slog.Any("err", err))
	}, ready)
}

// Exclusive runs fn, the job called name, unless another replica is running
// it: ran is false then.
func (r *Replica) Exclusive(ctx context.Context, name string, fn func(context.Context) error) (ran bool, err error) {
	return r.DB.RunExclusive(ctx, name, fn)
}

// pepperName is the cluster secret that client secrets are hashed with.
const pepperName = "secret-pepper"

// Pepper returns the secret-hashing key that every replica shares, creating
// it on the first start of the first replica: seed when not empty (the
// pepper of a single-node data folder being moved to PostgreSQL), else 32
// random bytes. It is stored sealed.
func (r *Replica) Pepper(ctx context.Context, seed []byte) ([]byte, error) {
	aad := []byte("berth " + pepperName)
	return r.DB.SharedSecret(ctx, pepperName, func() ([]byte, error) {
		p := seed
		if len(p) == 0 {
			p = make([]byte, 32)
			if _, err := io.ReadFull(rand.Reader, p); err != nil {
				return nil, err
			}
		}
		return r.Sealer.Seal(p, aad)
	}, func(sealed []byte) ([]byte, error) {
		return r.Sealer.Open(sealed, aad)
	})
}

// Keyring opens the signing keys kept in the database, sealed, creating the
// first one when none exists: replicas starting at once wait for each other,
// so that they create one between them.
func (r *Replica) Keyring(ctx context.Context, now time.Time) (kr *oauth.Keyring, err error) {
	err = r.WithKeyring(ctx, now, func(k *oauth.Keyring) error {
		kr = k
		return nil
	})
	return kr, err
}

// WithKeyring opens the signing keys as Keyring does and runs fn on them
// before it lets go of the lock: a change fn makes (berth keys rotate) never
// interleaves with another replica creating the first key or rotating. Each
// key saved is announced to every replica (PayloadKeys).
func (r *Replica) WithKeyring(ctx context.Context, now time.Time, fn func(*oauth.Keyring) error) error {
	l, err := r.DB.Lock(ctx, "signing-keys")
	if err != nil {
		return err
	}
	defer l.Release()
	kr, err := oauth.OpenKeyring(oauth.SealedKeyStore{Store: r.DB.Keys(), Sealer: r.Sealer}, now, rand.Reader)
	if err != nil {
		return err
	}
	return fn(kr)
}

// Serially runs fn while holding the lock called name, waiting for any
// replica that holds it: the first start (bootstrap) of replicas started at
// once.
func (r *Replica) Serially(ctx context.Context, name string, fn func() error) error {
	l, err := r.DB.Lock(ctx, name)
	if err != nil {
		return err
	}
	defer l.Release()
	return fn()
}

// Limiter returns a failed-attempt limiter with the default limits whose
// counts are those of every replica (kind "client" or "addr"). When the
// database fails, it counts this replica's failures alone, and logs.
func (r *Replica) Limiter(kind string, now func() time.Time) *oauth.Limiter {
	return oauth.NewLimiter(0, 0, 0, now).Share(r.DB.Limits(), kind, func(err error) {
		r.Logger.Warn("attempt limits fall back to this replica's own count", slog.Any("err", err))
	})
}

// Maintain removes what the cluster keeps that expired (attempt counters
// already forgiven). Run it on a schedule, on one replica.
func (r *Replica) Maintain(ctx context.Context, now time.Time) error {
	_, err := r.DB.Limits().DeleteForgiven(ctx, now)
	return err
}
