package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth"
)

// Header values middleware sets on every answer; never modified.
var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	noContent  = []string{"default-src 'none'; frame-ancestors 'none'"}
)

// middleware gives each request an id (the caller's X-Request-Id when it is
// sane), logs one line when it ends, and turns a panic into a logged 500.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			id = s.cfg.NewID()
		}
		ctx := berth.WithSourceAddress(berth.WithRequestID(r.Context(), id), sourceHost(r.RemoteAddr))
		if hook := s.conns.authenticatedHook(ctx); hook != nil {
			ctx = berth.WithAuthenticatedHook(ctx, hook)
		}
		r = r.WithContext(ctx)
		limitBody(w, r, s.cfg.BodyTimeout)
		h := w.Header()
		h.Set("X-Request-Id", id)
		// Defaults every answer carries, the plain 404 of an unknown path
		// included; a handler that serves pages (the console, sign-in)
		// sets its own policy over them. Shared values: no allocation.
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		h["Content-Security-Policy"] = noContent
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Logger.ErrorContext(ctx, "panic", slog.Any("panic", p))
				if !rec.wrote {
					http.Error(rec, "internal error (request id "+id+")", http.StatusInternalServerError)
				}
			}
			if !rec.wrote && ctx.Err() != nil {
				// The client left before anything was written: nothing was
				// answered, which a 200 would misstate. 499 is the status
				// access logs use for it (nginx's "client closed request").
				rec.status = statusClientClosed
			}
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			d := time.Since(start)
			s.cfg.Logger.LogAttrs(ctx, level, accessLogMessage,
				slog.String("method", r.Method), slog.String("path", berth.RedactCredential(r.URL.Path)),
				slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", d))
			if s.cfg.Observe != nil {
				s.cfg.Observe(r.Method, r.URL.Path, rec.status, d)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// sourceHost is the host part of a remote address; forwarded headers are not
// trusted.
func sourceHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// recorder notes the status and size of a response. It keeps io.ReaderFrom so
// that blob downloads still use sendfile.
// statusClientClosed is logged for a request whose client left before any
// answer; it is never sent.
const statusClientClosed = 499

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wrote = true
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// LogHandler wraps h so that every record logged with a request's context
// carries its request id.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := berth.RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
