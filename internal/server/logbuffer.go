package server

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// accessLogMessage is the message of the one record the middleware logs per
// request.
const accessLogMessage = "request"

// LogFlushDelay is how long a LogBuffer holds access-log lines at most.
const LogFlushDelay = 50 * time.Millisecond

// logBufferMax is how many held bytes a LogBuffer writes at once, without
// waiting for the delay.
const logBufferMax = 32 << 10

// LogBuffer writes log records to w, the access log's lines (the middleware's
// one record per request, below warning) gathered for at most LogFlushDelay
// or logBufferMax bytes, every other record at once together with the lines
// held before it, so that records keep their order. Under load that is one
// write for many requests instead of one each (7 to 10% of a manifest
// GET's CPU on a 2-core machine, docs/benchmarks.md). What a crash loses is the held lines: at most the
// delay's worth of access log, never a warning or an error.
//
// Close writes what is held; records logged after it are written at once.
type LogBuffer struct {
	w     io.Writer
	delay time.Duration
	// after runs f once d has passed; time.AfterFunc outside tests.
	after func(d time.Duration, f func())

	mu      sync.Mutex
	buf     []byte
	pending bool // a flush is scheduled
	closed  bool
}

// NewLogBuffer returns a LogBuffer writing to w.
func NewLogBuffer(w io.Writer) *LogBuffer {
	return &LogBuffer{w: w, delay: LogFlushDelay, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// Handler returns a handler that formats records with newHandler and writes
// them through b: the access log's lines held, every other record at once.
func (b *LogBuffer) Handler(newHandler func(io.Writer) slog.Handler) slog.Handler {
	return splitHandler{held: newHandler(heldWriter{b}), direct: newHandler(directWriter{b})}
}

// Close writes the held lines; later records are written at once.
func (b *LogBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// flushLocked writes the held lines; b.mu is held.
func (b *LogBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// hold adds p to the held lines.
func (b *LogBuffer) hold(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > logBufferMax {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	if !b.pending {
		b.pending = true
		b.after(b.delay, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.pending = false
			_ = b.flushLocked() // as a log line written at once would be: nowhere to report it
		})
	}
	return len(p), nil
}

// write writes the held lines and then p.
func (b *LogBuffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > 0 {
		// One write for both.
		b.buf = append(b.buf, p...)
		err := b.flushLocked()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return b.w.Write(p)
}

type heldWriter struct{ b *LogBuffer }

func (w heldWriter) Write(p []byte) (int, error) { return w.b.hold(p) }

type directWriter struct{ b *LogBuffer }

func (w directWriter) Write(p []byte) (int, error) { return w.b.write(p) }

// splitHandler hands the access log's records to held and every other
// record to direct, two handlers formatting alike.
type splitHandler struct{ held, direct slog.Handler }

func (h splitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.direct.Enabled(ctx, l)
}

func (h splitHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelWarn && rec.Message == accessLogMessage {
		return h.held.Handle(ctx, rec)
	}
	return h.direct.Handle(ctx, rec)
}

func (h splitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return splitHandler{h.held.WithAttrs(attrs), h.direct.WithAttrs(attrs)}
}

func (h splitHandler) WithGroup(name string) slog.Handler {
	return splitHandler{h.held.WithGroup(name), h.direct.WithGroup(name)}
}
