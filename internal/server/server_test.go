package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/server"
)

// logBuffer collects JSON log records written by concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records decodes every record logged so far.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		recs = append(recs, r)
	}
	return recs
}

// requestRecord returns the request log record of the request with id.
func (b *logBuffer) requestRecord(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, r := range b.records(t) {
		if r["request_id"] == id && r["status"] != nil {
			return r
		}
	}
	return nil
}

// testServer is a Server listening on 127.0.0.1:0 and serving in a goroutine.
type testServer struct {
	*server.Server
	url    string
	logs   *logBuffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// start runs a server with handlers mounted; NewID returns gen-1, gen-2, …
// Each option changes the configuration first.
func start(t *testing.T, handlers map[string]http.Handler, options ...func(*server.Config)) *testServer {
	t.Helper()
	logs := &logBuffer{}
	var n atomic.Int64
	cfg := server.Config{
		Addr:            "127.0.0.1:0",
		Handlers:        handlers,
		Logger:          slog.New(server.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		NewID:           func() string { return fmt.Sprintf("gen-%d", n.Add(1)) },
		ShutdownTimeout: 10 * time.Second,
	}
	for _, o := range options {
		o(&cfg)
	}
	srv := server.New(cfg)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		Server: srv,
		url:    "http://" + srv.Addr(),
		logs:   logs,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { ts.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s at cleanup")
		}
	})
	ts.waitHealthy(t)
	return ts
}

// waitHealthy polls /healthz until it answers 200, for at most 5 s.
func (ts *testServer) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := ts.client.Get(ts.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 5 s (last error %v)", err)
		}
		<-tick.C
	}
}

// stopWithin cancels the server and fails unless Serve returns nil within d.
func (ts *testServer) stopWithin(t *testing.T, d time.Duration) {
	t.Helper()
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancellation, want nil", err)
		}
		ts.done <- nil // for cleanup
	case <-time.After(d):
		t.Fatalf("Serve did not return within %s of cancellation", d)
	}
}

func (ts *testServer) get(t *testing.T, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// echoID answers with the request id its context carries.
var echoID = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, berth.RequestID(r.Context()))
})

func TestRequestID(t *testing.T) {
	ts := start(t, map[string]http.Handler{"/echo": echoID})
	long64 := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, sent string
		echoed     bool
	}{
		{"absent", "", false},
		{"sane", "build-42_web.3-AZ", true},
		{"64 characters", long64, true},
		{"65 characters", long64 + "b", false},
		{"space", "a b", false},
		{"slash", "../etc/passwd", false},
		{"semicolon", "id;drop", false},
		{"quote", `id"x`, false},
		{"non-ASCII", "idé", false},
		{"log injection", "id level=ERROR", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.sent != "" {
				hdr["X-Request-Id"] = tc.sent
			}
			resp, body := ts.get(t, "/echo", hdr)
			got := resp.Header.Get("X-Request-Id")
			switch {
			case tc.echoed && got != tc.sent:
				t.Errorf("X-Request-Id = %q, want %q echoed", got, tc.sent)
			case !tc.echoed && !strings.HasPrefix(got, "gen-"):
				t.Errorf("X-Request-Id = %q, want a generated id in place of %q", got, tc.sent)
			}
			if body != got {
				t.Errorf("the handler's context carries %q, the response header says %q", body, got)
			}
			if rec := ts.logs.requestRecord(t, got); rec == nil {
				t.Errorf("no request log record with request_id %q", got)
			} else if rec["path"] != "/echo" || rec["status"] != float64(200) {
				t.Errorf("request record = %v, want path /echo status 200", rec)
			}
		})
	}
	// Generated ids are distinct.
	a, _ := ts.get(t, "/echo", nil)
	b, _ := ts.get(t, "/echo", nil)
	if a.Header.Get("X-Request-Id") == b.Header.Get("X-Request-Id") {
		t.Errorf("two requests got the same generated id %q", a.Header.Get("X-Request-Id"))
	}
}

func TestPanicIs500AndServerGoesOn(t *testing.T) {
	ts := start(t, map[string]http.Handler{
		"/panic": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
		"/abort": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
		"/echo":  echoID,
	})
	for i := range 3 {
		resp, body := ts.get(t, "/panic", map[string]string{"X-Request-Id": fmt.Sprintf("panic-%d", i)})
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("panicking handler answered %d, want 500", resp.StatusCode)
		}
		if strings.Contains(body, "boom") {
			t.Errorf("the panic value reached the client: %q", body)
		}
		if resp, _ := ts.get(t, "/healthz", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz after a panic = %d", resp.StatusCode)
		}
	}
	rec := ts.logs.requestRecord(t, "panic-0")
	if rec == nil || rec["status"] != float64(500) || rec["level"] != "ERROR" {
		t.Errorf("request record of the panic = %v, want status 500 at level ERROR", rec)
	}
	logged := false
	for _, r := range ts.logs.records(t) {
		if r["request_id"] == "panic-0" && r["panic"] == "boom" {
			logged = true
		}
	}
	if !logged {
		t.Error("the panic value is not logged with its request id")
	}

	// http.ErrAbortHandler aborts the response; the server still goes on.
	if resp, err := ts.client.Get(ts.url + "/abort"); err == nil {
		resp.Body.Close()
		t.Errorf("an aborted handler answered %d, want the connection cut", resp.StatusCode)
	}
	if resp, body := ts.get(t, "/echo", nil); resp.StatusCode != http.StatusOK || body == "" {
		t.Errorf("after an abort /echo = %d %q", resp.StatusCode, body)
	}
}

func TestHealthz(t *testing.T) {
	ts := start(t, nil)
	resp, _ := ts.get(t, "/healthz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", resp.StatusCode)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("/healthz has no request id: it must pass through the middleware")
	}
	if resp, _ := ts.get(t, "/no-such-path", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path = %d, want 404", resp.StatusCode)
	}
}

// TestServeStopsWithIdleConnections: an idle keep-alive connection and a spare
// connection that never sent a request must not hold up shutdown (net/http's
// Shutdown alone waits about 5 s for the spare one).
func TestServeStopsWithIdleConnections(t *testing.T) {
	ts := start(t, nil)

	// Dialled first, so the server has accepted it by the time it answers the
	// request on the keep-alive connection below (the backlog is served in order).
	spare, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()

	idle, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: berth\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("keep-alive request = %d (close %v)", resp.StatusCode, resp.Close)
	}

	ts.stopWithin(t, 2*time.Second)

	// Both connections were closed by the server.
	for name, c := range map[string]io.Reader{"idle": br, "spare": spare} {
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s connection still open after Serve returned (read %d bytes)", name, n)
		}
	}
}

// TestServeFinishesRequestsInFlight: a request running when ctx is cancelled
// completes, and Serve waits for it.
func TestServeFinishesRequestsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, map[string]http.Handler{
		"/slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		}),
	})

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := ts.client.Get(ts.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	ts.cancel()

	// Shutdown has begun once the listener refuses new connections.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.Dial("tcp", ts.Addr())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts 5 s after cancellation")
		}
		<-tick.C
	}
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("request in flight = %d %q %v, want 200 done", r.status, r.body, r.err)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
		ts.done <- nil
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2 s of the last request finishing")
	}
}

func TestListenBusyAddress(t *testing.T) {
	ts := start(t, nil)
	srv := server.New(server.Config{Addr: ts.Addr(), Logger: slog.New(slog.DiscardHandler), NewID: func() string { return "x" }})
	if err := srv.Listen(); err == nil {
		t.Fatalf("second Listen on %s succeeded", ts.Addr())
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(server.LogHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := berth.WithRequestID(context.Background(), "req-7")

	decode := func() map[string]any {
		t.Helper()
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("log output %q: %v", buf.String(), err)
		}
		buf.Reset()
		return rec
	}

	logger.InfoContext(ctx, "with context", "k", "v")
	if rec := decode(); rec["request_id"] != "req-7" || rec["k"] != "v" {
		t.Errorf("record logged with a request context = %v, want request_id req-7 and k v", rec)
	}

	logger.Info("without context")
	if rec := decode(); rec["request_id"] != nil {
		t.Errorf("record without a request context has request_id %v", rec["request_id"])
	}

	logger.InfoContext(context.Background(), "plain context")
	if rec := decode(); rec["request_id"] != nil {
		t.Errorf("record with a context holding no id has request_id %v", rec["request_id"])
	}

	// Loggers derived with With keep both their attributes and the request id.
	logger.With("component", "gc").LogAttrs(ctx, slog.LevelWarn, "derived")
	if rec := decode(); rec["request_id"] != "req-7" || rec["component"] != "gc" || rec["level"] != "WARN" {
		t.Errorf("record of a derived logger = %v", rec)
	}

	// Levels are still decided by the wrapped handler.
	quiet := slog.New(server.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	quiet.InfoContext(ctx, "below level")
	if buf.Len() != 0 {
		t.Errorf("a record below the level was written: %q", buf.String())
	}
}

// TestHealthzReadyOnFirstRequest: once Serve runs, the very first request to
// /healthz answers 200, never the 503 meant for shutdown. The request waits in
// the listen backlog before Serve starts, so it is handled as early as can be.
func TestHealthzReadyOnFirstRequest(t *testing.T) {
	for i := range 200 {
		srv := server.New(server.Config{
			Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
			NewID: func() string { return "id" },
		})
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		cancel()
		if serveErr := <-done; serveErr != nil {
			t.Fatalf("Serve: %v", serveErr)
		}
		if err != nil {
			t.Fatalf("run %d: GET /healthz: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("run %d: first /healthz = %d, want 200", i, resp.StatusCode)
		}
	}
}

// TestRequestLogRedactsPastedSecret: a secret pasted into a URL path (where a
// secret's id belongs, say) never reaches the request log.
func TestRequestLogRedactsPastedSecret(t *testing.T) {
	ts := start(t, nil)
	v, err := berth.NewSecretValue(strings.NewReader(strings.Repeat("berth", 100)))
	if err != nil {
		t.Fatal(err)
	}
	secret := v.Reveal()
	ts.get(t, "/api/v1/principals/ci/secrets/"+secret, map[string]string{"X-Request-Id": "pasted"})
	rec := ts.logs.requestRecord(t, "pasted")
	if rec == nil {
		t.Fatal("no request log record")
	}
	if path, _ := rec["path"].(string); strings.Contains(path, secret[:12]) || path != "[redacted]" {
		t.Fatalf("request log path %q holds the secret", path)
	}
	// An ordinary path is logged as it is.
	ts.get(t, "/v2/team/app/manifests/v1", map[string]string{"X-Request-Id": "plain"})
	if rec := ts.logs.requestRecord(t, "plain"); rec == nil || rec["path"] != "/v2/team/app/manifests/v1" {
		t.Fatalf("plain path logged as %v", rec["path"])
	}
}

// TestRequestLogOmitsQuery: the request log records the path, never the query
// string, where a client may have put a credential.
func TestRequestLogOmitsQuery(t *testing.T) {
	ts := start(t, nil)
	v, err := berth.NewSecretValue(strings.NewReader(strings.Repeat("query", 100)))
	if err != nil {
		t.Fatal(err)
	}
	secret := v.Reveal()
	ts.get(t, "/v2/?client_secret="+secret+"&n="+secret, map[string]string{"X-Request-Id": "queried"})
	rec := ts.logs.requestRecord(t, "queried")
	if rec == nil {
		t.Fatal("no request log record")
	}
	if rec["path"] != "/v2/" {
		t.Errorf("request log path %q, want /v2/", rec["path"])
	}
	ts.logs.mu.Lock()
	all := ts.logs.buf.String()
	ts.logs.mu.Unlock()
	if strings.Contains(all, secret[8:]) {
		t.Fatal("the log holds the secret sent in the query string")
	}
}

// Every answer carries the security defaults, an unknown path's plain 404
// included; a handler sets its own policy over them.
func TestSecurityHeaderDefaults(t *testing.T) {
	ts := start(t, map[string]http.Handler{
		"/page": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		}),
	})
	for path, csp := range map[string]string{"/nothing-here": "default-src 'none'; frame-ancestors 'none'", "/page": "default-src 'self'"} {
		resp, _ := ts.get(t, path, nil)
		h := resp.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Content-Security-Policy") != csp {
			t.Errorf("%s: %d %v", path, resp.StatusCode, h)
		}
	}
}

// TestRequestLogClientLeft: a request whose client left before anything
// was answered is logged with 499, not with the 200 nothing was sent as.
func TestRequestLogClientLeft(t *testing.T) {
	entered := make(chan struct{})
	ended := make(chan struct{})
	ts := start(t, map[string]http.Handler{"/slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // waits for something the client gives up on
		close(ended)
	})})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/slow", nil)
	req.Header.Set("X-Request-Id", "left")
	go func() {
		<-entered
		cancel()
	}()
	if resp, err := ts.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the cancelled request was answered: %s", resp.Status)
	}
	<-ended
	var rec map[string]any
	for deadline := time.Now().Add(5 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		rec = ts.logs.requestRecord(t, "left") // logged as the handler returns
	}
	if rec == nil || rec["status"] != float64(499) {
		t.Fatalf("request log of the request whose client left: %v, want status 499", rec)
	}
}
