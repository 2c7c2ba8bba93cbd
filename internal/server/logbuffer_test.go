package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/server"
)

// flushes stands in for time.AfterFunc: it keeps what would run, and runs
// it when the test says the time has passed.
type flushes struct {
	mu     sync.Mutex
	delays []time.Duration
	fns    []func()
}

func (f *flushes) after(d time.Duration, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays = append(f.delays, d)
	f.fns = append(f.fns, fn)
}

// pass runs what is due.
func (f *flushes) pass() {
	f.mu.Lock()
	fns := f.fns
	f.fns = nil
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// scheduled returns the delays asked for so far.
func (f *flushes) scheduled() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.delays...)
}

func jsonFormat(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
}

// messages returns the msg of each record in logs, in order.
func messages(t *testing.T, logs *logBuffer) []string {
	t.Helper()
	var out []string
	for _, r := range logs.records(t) {
		out = append(out, r["msg"].(string))
	}
	return out
}

// TestLogBufferHoldsOnlyTheAccessLog checks that the middleware's line per
// request waits for the delay, that any other record goes out at once and
// takes the held lines with it, in order, and that a request answered with a
// 5xx is not held.
func TestLogBufferHoldsOnlyTheAccessLog(t *testing.T) {
	f := &flushes{}
	out := &logBuffer{}
	lb := server.NewLogBufferAfter(out, f.after)
	ts := start(t, map[string]http.Handler{
		"/echo":  echoID,
		"/panic": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
	}, func(c *server.Config) { c.Logger = slog.New(server.LogHandler(lb.Handler(jsonFormat))) })
	logger := slog.New(server.LogHandler(lb.Handler(jsonFormat)))

	f.pass() // what start's readiness requests left held
	before := len(messages(t, out))
	ts.get(t, "/echo", map[string]string{"X-Request-Id": "one"})
	ts.get(t, "/echo", map[string]string{"X-Request-Id": "two"})
	if got := messages(t, out); len(got) != before {
		t.Fatalf("written before the delay passed: %v", got[before:])
	}
	for _, d := range f.scheduled() {
		if d != server.LogFlushDelay {
			t.Fatalf("a flush scheduled after %v, want %v", d, server.LogFlushDelay)
		}
	}
	f.pass()
	if out.requestRecord(t, "one") == nil || out.requestRecord(t, "two") == nil {
		t.Fatal("a request's line is missing after the delay")
	}

	ts.get(t, "/echo", map[string]string{"X-Request-Id": "three"})
	logger.Info("upstream added")
	recs := out.records(t)
	if last := recs[len(recs)-1]; last["msg"] != "upstream added" {
		t.Fatalf("the last record is %v, want the info record written at once", last)
	}
	if held := recs[len(recs)-2]; held["request_id"] != "three" {
		t.Fatalf("the record before the info is %v, want the held line of request three", held)
	}

	ts.get(t, "/panic", map[string]string{"X-Request-Id": "boom"})
	if rec := out.requestRecord(t, "boom"); rec == nil || rec["level"] != "ERROR" {
		t.Fatalf("the 500's line = %v, want it written at once at level ERROR", rec)
	}
}

// TestLogBufferBoundsWhatItHolds checks that held lines go out once they
// fill the buffer, without waiting, and that Close writes the rest and
// makes later lines go out at once.
func TestLogBufferBoundsWhatItHolds(t *testing.T) {
	f := &flushes{}
	out := &logBuffer{}
	lb := server.NewLogBufferAfter(out, f.after)
	logger := slog.New(lb.Handler(jsonFormat))
	pad := strings.Repeat("x", 1000)
	n := 0
	for len(messages(t, out)) == 0 {
		logger.Info("request", "path", pad)
		if n++; n > 100 {
			t.Fatal("100 lines of 1 KB held without a write")
		}
	}
	if n < 20 {
		t.Fatalf("written after %d lines of 1 KB, want them held up to the bound", n)
	}
	logger.Info("request", "path", "/last")
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(messages(t, out)); got != n+1 {
		t.Fatalf("after Close %d lines written, want %d", got, n+1)
	}
	logger.Info("request", "path", "/after-close")
	if got := len(messages(t, out)); got != n+2 {
		t.Fatalf("a line after Close is held (%d written, want %d)", got, n+2)
	}
}
