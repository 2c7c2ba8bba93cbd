package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that goroutines may write while a test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCLI runs one command to completion and returns its exit status and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(t.Context(), args, &out, &errOut, mapEnv(env))
	return code, out.String(), errOut.String()
}

// running is a `berth serve` started by startServe.
type running struct {
	dir    string // the data folder
	url    string // http://127.0.0.1:PORT
	client *http.Client
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan int
	code   int
	exited bool
}

var listenLine = regexp.MustCompile(`(https?)://(127\.0\.0\.1:[0-9]+)`)

// startServe runs `berth serve --addr 127.0.0.1:0 --data DIR [args…]` through
// Run in a goroutine, reads the listening address it prints on stdout, and
// waits until /healthz answers 200. The server is stopped at cleanup.
func startServe(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	return startServeEnv(t, nil, dir, args...)
}

// startServeEnv is startServe with the environment env (BERTH_*, AWS_*).
func startServeEnv(t *testing.T, env map[string]string, dir string, args ...string) *running {
	t.Helper()
	return startServeClient(t, env, dir, &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}, args...)
}

// startServeClient is startServeEnv whose requests go through client (one
// that trusts the server's TLS certificate, for a server on https).
func startServeClient(t *testing.T, env map[string]string, dir string, client *http.Client, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &running{
		dir:    dir,
		stderr: &lockedBuffer{},
		cancel: cancel,
		done:   make(chan int, 1),
		client: client,
	}
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, args...)
	go func() {
		code := Run(ctx, argv, pw, s.stderr, mapEnv(env))
		pw.Close()
		s.done <- code
	}()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		s.stop(t)
	})

	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br) // serve prints nothing else; never block it
	}()
	select {
	case line := <-lines:
		m := listenLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("serve printed %q on stdout, want its listening address; stderr:\n%s", line, s.stderr.String())
		}
		s.url = m[1] + "://" + m[2]
	case <-time.After(10 * time.Second):
		t.Fatalf("serve printed no address within 10 s; stderr:\n%s", s.stderr.String())
	}
	s.waitHealthy(t)
	return s
}

// waitHealthy polls /healthz until it answers 200, for at most 10 s.
func (s *running) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := s.client.Get(s.url + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 10 s (last: %v); stderr:\n%s", err, s.stderr.String())
		}
		<-tick.C
	}
}

// stop cancels the serve context and waits, at most 5 s, for Run to return.
func (s *running) stop(t *testing.T) int {
	t.Helper()
	if s.exited {
		return s.code
	}
	s.cancel()
	select {
	case s.code = <-s.done:
		s.exited = true
	case <-time.After(5 * time.Second):
		t.Fatalf("serve did not return within 5 s of cancellation; stderr:\n%s", s.stderr.String())
	}
	return s.code
}

// admin returns the credentials the first start wrote to the data folder.
func (s *running) admin(t *testing.T) (clientID, secret string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "initial-admin.json"))
	if err != nil {
		t.Fatalf("read initial-admin.json: %v", err)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.ClientID == "" || creds.ClientSecret == "" {
		t.Fatalf("initial-admin.json is not {client_id, client_secret}: %v", err)
	}
	return creds.ClientID, creds.ClientSecret
}

// do sends one request, as the initial admin unless hdr holds an
// Authorization header (an empty one sends none) to the running server; path may be a Location header.
func (s *running) do(t *testing.T, method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	if !strings.HasPrefix(path, "/") {
		t.Fatalf("path %q is not absolute", path)
	}
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	if _, ok := hdr["Authorization"]; !ok {
		id, secret := s.admin(t)
		req.SetBasicAuth(id, secret)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// servedFolder returns a data folder that berth serve has started on once,
// and stopped: what the commands working on a data folder directly expect.
func servedFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := startServe(t, dir)
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}
	return dir
}
