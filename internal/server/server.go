package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds what a Server needs. Handlers maps URL patterns of
// net/http.ServeMux to the handlers that serve them.
type Config struct {
	Addr            string
	Handlers        map[string]http.Handler
	Logger          *slog.Logger
	NewID           func() string
	ShutdownTimeout time.Duration
	// Observe, when set, is told of every answered request (metrics).
	Observe func(method, path string, status int, d time.Duration)
	// BodyTimeout bounds reading a request body (DefaultBodyTimeout when
	// zero); a handler lifts it for an authorized upload with
	// ExtendBodyDeadline.
	BodyTimeout time.Duration
	// UnauthenticatedPerAddress bounds the open connections of one source
	// address on which no request proved a credential yet
	// (DefaultUnauthenticatedPerAddress when zero, no bound when negative).
	// Behind a proxy every connection has the proxy's address: raise it.
	UnauthenticatedPerAddress int
	// TLS, when set, serves HTTPS (and HTTP/2) with it; nil serves plain
	// HTTP. Its GetCertificate supplies the certificate (tls.go, autocert).
	TLS *tls.Config
}

// Server is berth's HTTP server.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	ln    net.Listener
	http  *http.Server
	ready atomic.Bool

	mu       sync.Mutex
	fresh    map[net.Conn]struct{} // accepted, no request read yet
	stopping bool
	conns    connLimiter
}

// New returns a server that is not yet listening.
func New(cfg Config) *Server {
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.UnauthenticatedPerAddress == 0 {
		cfg.UnauthenticatedPerAddress = DefaultUnauthenticatedPerAddress
	}
	s := &Server{cfg: cfg, fresh: map[net.Conn]struct{}{}, conns: connLimiter{max: cfg.UnauthenticatedPerAddress}}
	mux := http.NewServeMux()
	s.mux = mux
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	s.http = &http.Server{
		Handler:           s.middleware(mux),
		ReadHeaderTimeout: DefaultHeaderTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		IdleTimeout:       120 * time.Second,
		ConnState:         s.trackConn,
		ConnContext:       s.connContext,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handle mounts one more handler; it must be called before Serve. It lets the
// composition root mount handlers that need the bound address.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Listen binds the address, so that Addr reports the port when it was 0.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address; it is valid after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns http://ADDR, or https://ADDR when the server serves TLS.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Serve answers requests until ctx is done, then stops accepting, lets
// requests in flight finish within the shutdown timeout, and returns.
func (s *Server) Serve(ctx context.Context) error {
	// Ready before the first request can be handled, or that request would
	// get the 503 meant for shutdown.
	s.ready.Store(true)
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS != nil {
			s.http.TLSConfig = s.cfg.TLS
			errc <- s.http.ServeTLS(s.ln, "", "") // HTTP/2 on, as net/http does for TLS
			return
		}
		errc <- s.http.Serve(s.ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.cfg.Logger.Info("shutting down", slog.Duration("timeout", s.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.closeFresh()
	if err := s.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// trackConn remembers connections that have not carried a request yet. Clients
// open such spare connections; net/http's Shutdown waits seconds for them, so
// closeFresh closes them at once instead.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		s.conns.close(c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case st == http.StateNew && s.stopping:
		c.Close()
	case st == http.StateNew:
		s.fresh[c] = struct{}{}
	default:
		delete(s.fresh, c)
	}
}

// connContext counts a new connection against its source address until a
// request on it proves a credential, closing it at once past the address's
// bound, and gives its requests what the server knows of it.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	info := s.conns.open(c)
	if info == nil {
		c.Close()
		return ctx
	}
	return context.WithValue(ctx, connInfoKey{}, info)
}

func (s *Server) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	for c := range s.fresh {
		c.Close()
		delete(s.fresh, c)
	}
}

// healthz answers 200 once the server accepts requests, 503 while it stops.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("stopping\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
