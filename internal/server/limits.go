package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the limits that keep requests without credentials cheap.
const (
	// DefaultMaxHeaderBytes bounds a request's header block: a bearer token
	// is under 2 KiB, and nothing berth reads before authentication needs
	// more.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultHeaderTimeout bounds reading a request's header block.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds reading a request's body: every body berth
	// takes before authorizing is under 64 KiB. An authorized upload lifts
	// it for an idle timeout of its own (see ExtendBodyDeadline).
	DefaultBodyTimeout = 30 * time.Second
	// DefaultUnauthenticatedPerAddress bounds the connections one address
	// may hold open before any request on them proved a credential.
	DefaultUnauthenticatedPerAddress = 64
)

// connInfo is what the server knows of one connection.
type connInfo struct {
	addr string
	mu   sync.Mutex
	// counted is true while the connection counts against its address's
	// unauthenticated connections: from its accepting until a request on it
	// proves a credential, or it closes.
	counted bool
}

type connInfoKey struct{}

// connLimiter counts, per source address, the open connections that have not
// carried an authenticated request.
type connLimiter struct {
	max int // <= 0: no limit

	mu     sync.Mutex
	byAddr map[string]int
	conns  map[net.Conn]*connInfo
}

// open registers a new connection and returns what the server knows of it,
// or nil when its address holds the most unauthenticated connections allowed.
func (l *connLimiter) open(c net.Conn) *connInfo {
	info := &connInfo{addr: sourceHost(c.RemoteAddr().String()), counted: true}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.byAddr[info.addr] >= l.max {
		return nil
	}
	if l.byAddr == nil {
		l.byAddr, l.conns = map[string]int{}, map[net.Conn]*connInfo{}
	}
	l.byAddr[info.addr]++
	l.conns[c] = info
	return info
}

// close forgets c.
func (l *connLimiter) close(c net.Conn) {
	l.mu.Lock()
	info := l.conns[c]
	delete(l.conns, c)
	l.mu.Unlock()
	if info != nil {
		l.uncount(info)
	}
}

// uncount stops counting info's connection against its address.
func (l *connLimiter) uncount(info *connInfo) {
	info.mu.Lock()
	was := info.counted
	info.counted = false
	info.mu.Unlock()
	if !was {
		return
	}
	l.mu.Lock()
	if l.byAddr[info.addr]--; l.byAddr[info.addr] <= 0 {
		delete(l.byAddr, info.addr)
	}
	l.mu.Unlock()
}

// authenticatedHook returns the function berth.Authenticated calls for a
// request on the connection of ctx: it stops counting that connection.
func (l *connLimiter) authenticatedHook(ctx context.Context) func() {
	info, _ := ctx.Value(connInfoKey{}).(*connInfo)
	if info == nil {
		return nil
	}
	return func() { l.uncount(info) }
}

// limitBody bounds the time to read r's body to d from now. The deadline is
// lifted once the body has been read, so that it never ends a handler still
// working (net/http cancels a request whose connection fails a read).
func limitBody(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if d <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(d)) != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts the read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// ExtendBodyDeadline gives the rest of r's body idle, renewed at every read
// that returns data: a handler calls it once the request is authorized to
// send a large body (a blob upload), so that a slow but moving upload
// finishes while a stalled one is cut. It returns r's body wrapped; the
// caller reads that.
func ExtendBodyDeadline(w http.ResponseWriter, body io.ReadCloser, idle time.Duration) io.ReadCloser {
	if body == nil || body == http.NoBody || idle <= 0 {
		return body
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(idle)) != nil {
		return body
	}
	return &idleBody{ReadCloser: body, rc: rc, idle: idle}
}

// idleBody renews the read deadline while data arrives.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{})
	case n > 0:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}
