package upstreamtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an upstream registry on loopback. With Username set it asks
// for Docker token authentication (a 401 Bearer challenge naming its
// /token endpoint, which takes Basic credentials), else it is anonymous.
type Registry struct {
	// URL is the registry's base URL, http://127.0.0.1:PORT.
	URL string
	// PushHost is host:port of the same content without authentication
	// and uncounted, for a test to put images there.
	PushHost string

	srv, push *httptest.Server

	mu       sync.Mutex
	username string
	password string
	tokens   map[string]bool
	rateLim  string        // Retry-After of a 429 on every request, when set
	corrupt  bool          // blob bodies have their last byte changed
	breakOff int64         // blob bodies are cut after this many bytes, when > 0
	hang     chan struct{} // while not nil, requests wait until it is closed or they are cancelled
	pauseAt  int64         // blob bodies stop after this many bytes until paused is closed, when > 0
	paused   chan struct{}
	link     *link // blob bodies share this bandwidth, when not nil

	// Counters of requests that passed authentication.
	ManifestGets, ManifestHeads, BlobGets, BlobHeads, TokenGets atomic.Int64
}

// New starts an upstream; username "" makes it anonymous. It stops when
// the test ends.
func New(t testing.TB, username, password string) *Registry {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{username: username, password: password, tokens: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, inner) }))
	r.push = httptest.NewServer(inner)
	r.URL = r.srv.URL
	r.PushHost = strings.TrimPrefix(r.push.URL, "http://")
	t.Cleanup(func() { r.srv.Close(); r.push.Close() })
	return r
}

// Stop closes the upstream's port: every later request is refused.
func (r *Registry) Stop() { r.srv.Close() }

// SetPassword changes the password the upstream accepts, and forgets every
// token it issued.
func (r *Registry) SetPassword(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.password, r.tokens = p, map[string]bool{}
}

// RateLimit makes every request answer 429 with Retry-After retryAfter;
// "" stops it.
func (r *Registry) RateLimit(retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rateLim = retryAfter
}

// Corrupt makes every blob GET answer other bytes than its digest names
// (the same length, its last byte changed), or, with false, the right ones
// again.
func (r *Registry) Corrupt(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt = on
}

// BreakOff makes every blob GET stop after n bytes of its body, the
// connection cut short of its Content-Length; 0 stops it.
func (r *Registry) BreakOff(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.breakOff = n
}

// Hang makes every request wait, answering nothing, until Release or until
// its client gives up: an upstream that accepts connections and hangs.
func (r *Registry) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang == nil {
		r.hang = make(chan struct{})
	}
}

// Release ends Hang: waiting requests are answered.
func (r *Registry) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
}

// PauseAfter makes every blob GET send n bytes of its body, flushed, and
// then wait until the returned function is called (or its client gives
// up): an upstream in the middle of a slow transfer.
func (r *Registry) PauseAfter(n int64) (resume func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.pauseAt, r.paused = n, ch
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.pauseAt, r.paused = 0, nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

// Throttle limits the blob bodies the upstream sends to bytesPerSecond,
// shared by all of them as a network link's bandwidth is, or, with 0,
// lifts the limit. It paces in real time, for benchmarks of a pull from
// an upstream slower than loopback; tests keep to PauseAfter.
func (r *Registry) Throttle(bytesPerSecond int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.link = nil
	if bytesPerSecond > 0 {
		r.link = &link{rate: bytesPerSecond}
	}
}

// Fetches counts every GET of content: manifests and blobs.
func (r *Registry) Fetches() int64 { return r.ManifestGets.Load() + r.BlobGets.Load() }

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, inner http.Handler) {
	r.mu.Lock()
	user, pass, limited, hang, corrupt, breakOff := r.username, r.password, r.rateLim, r.hang, r.corrupt, r.breakOff
	pauseAt, paused, link := r.pauseAt, r.paused, r.link
	r.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-req.Context().Done():
			return
		}
	}
	if limited != "" {
		w.Header().Set("Retry-After", limited)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`)
		return
	}
	if req.URL.Path == "/token" {
		u, p, ok := req.BasicAuth()
		if user != "" && (!ok || u != user || p != pass) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"details":"incorrect username or password"}`)
			return
		}
		r.TokenGets.Add(1)
		var b [16]byte
		_, _ = rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		r.mu.Lock()
		r.tokens[tok] = true
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
		return
	}
	if user != "" {
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		r.mu.Lock()
		valid := r.tokens[tok]
		r.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+r.URL+`/token",service="upstreamtest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
	}
	switch {
	case strings.Contains(req.URL.Path, "/manifests/") && req.Method == http.MethodGet:
		r.ManifestGets.Add(1)
	case strings.Contains(req.URL.Path, "/manifests/") && req.Method == http.MethodHead:
		r.ManifestHeads.Add(1)
	case strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet:
		r.BlobGets.Add(1)
		if corrupt {
			w = &corruptWriter{ResponseWriter: w}
		}
		if breakOff > 0 {
			w = &breakingWriter{ResponseWriter: w, left: breakOff}
		}
		if pauseAt > 0 {
			w = &pausingWriter{ResponseWriter: w, left: pauseAt, paused: paused, done: req.Context().Done()}
		}
		if link != nil {
			w = &throttledWriter{ResponseWriter: w, link: link, ctx: req.Context()}
		}
	case strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodHead:
		r.BlobHeads.Add(1)
	}
	inner.ServeHTTP(w, req)
}

// corruptWriter changes the last byte of a body whose Content-Length is
// set.
type corruptWriter struct {
	http.ResponseWriter
	n int64
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	size, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
	if last := size - 1 - c.n; err == nil && last >= 0 && last < int64(len(p)) {
		p = append([]byte(nil), p...)
		p[last] ^= 0xff
	}
	c.n += int64(len(p))
	return c.ResponseWriter.Write(p)
}

// pausingWriter writes left bytes of a body, flushes them, and waits until
// paused is closed before it writes the rest.
type pausingWriter struct {
	http.ResponseWriter
	left   int64
	paused <-chan struct{}
	done   <-chan struct{}
}

func (p *pausingWriter) Write(b []byte) (int, error) {
	if p.left < 0 || int64(len(b)) <= p.left {
		if p.left >= 0 {
			p.left -= int64(len(b))
		}
		return p.ResponseWriter.Write(b)
	}
	n, err := p.ResponseWriter.Write(b[:p.left])
	if err != nil {
		return n, err
	}
	if f, ok := p.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case <-p.paused:
	case <-p.done:
		return n, http.ErrAbortHandler
	}
	p.left = -1
	m, err := p.ResponseWriter.Write(b[n:])
	return n + m, err
}

// breakingWriter writes left bytes of a body, then cuts the connection.
type breakingWriter struct {
	http.ResponseWriter
	left int64
}

func (b *breakingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= b.left {
		b.left -= int64(len(p))
		return b.ResponseWriter.Write(p)
	}
	_, _ = b.ResponseWriter.Write(p[:b.left])
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler)
}

// link is a bandwidth the bodies written through it share: a token bucket
// that fills at rate bytes a second and holds at most linkBurst of them,
// so that a body is sent at the rate from its first bytes, and an idle
// link saves up no more than a burst.
type link struct {
	rate int64

	mu  sync.Mutex
	tat time.Time // when the bytes granted so far are all sent, at the rate
}

// linkBurst is the most bytes a link sends ahead of its rate: about a TCP
// window on a WAN path (100 MB/s × 40 ms), and enough that a writer the
// scheduler wakes late on a loaded machine catches up rather than losing
// bandwidth.
const linkBurst = 4 << 20

// linkPiece is the size of the writes a body is cut into.
const linkPiece = 64 << 10

// wait blocks until n more bytes may be sent, or ctx ends.
func (l *link) wait(ctx context.Context, n int) error {
	take := func(n int) time.Duration { return time.Duration(int64(n) * int64(time.Second) / l.rate) } // n bytes at the rate
	l.mu.Lock()
	now := time.Now()
	l.tat = later(l.tat, now).Add(take(n))
	due := l.tat.Add(-take(linkBurst))
	l.mu.Unlock()
	d := due.Sub(now)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// throttledWriter writes a body through a link, in pieces of linkPiece
// bytes, each sent once the link grants it; it stops when the request's
// client has gone.
type throttledWriter struct {
	http.ResponseWriter
	link *link
	ctx  context.Context
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := min(len(p)-n, linkPiece)
		if err := t.link.wait(t.ctx, m); err != nil {
			return n, err
		}
		k, err := t.ResponseWriter.Write(p[n : n+m])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
