package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/testtool"
)

// Set by TestMain.
var (
	berthBin  string // the binary under test
	skipAll   string // when not empty, every test skips with this reason
	strict    = os.Getenv("BERTH_E2E") == "1"
	serverKnd = serverKind()
)

func serverKind() string {
	if k := os.Getenv("BERTH_E2E_SERVER"); k != "" {
		return k
	}
	return "berth"
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	switch {
	case serverKnd == "distribution":
		if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
			if strict {
				fmt.Fprintln(os.Stderr, "e2e: BERTH_E2E_SERVER=distribution but /usr/bin/docker-registry is missing")
				return 1
			}
			skipAll = "/usr/bin/docker-registry is not installed"
		}
	case os.Getenv("BERTH_E2E_BIN") != "":
		berthBin = os.Getenv("BERTH_E2E_BIN")
		if _, err := os.Stat(berthBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	default:
		root, err := filepath.Abs("..")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		if _, err := os.Stat(filepath.Join(root, "cmd", "berth")); err != nil {
			if strict {
				fmt.Fprintln(os.Stderr, "e2e: BERTH_E2E=1 but ./cmd/berth does not exist")
				return 1
			}
			skipAll = "./cmd/berth does not exist yet"
			break
		}
		dir, err := os.MkdirTemp("", "berth-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		berthBin = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", berthBin, "./cmd/berth")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/berth: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// statSources stats every Go source, go.mod, go.sum and embedded file of the
// module under root, so that go test's result cache depends on them.
func statSources(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "berth-data":
				return filepath.SkipDir
			}
			return nil
		}
		_, err = os.Stat(path)
		return err
	})
}

var cacheKeyOnce sync.Once

// cacheKey makes go test's result cache depend on everything the e2e result
// depends on. go test caches a passing result keyed on the files and
// environment variables the tests read while running (not in TestMain). The
// berth binary is built by a subprocess, so every file of the module is
// stat-ed here, and the knobs read in TestMain are read again.
func cacheKey() {
	for _, k := range []string{"BERTH_E2E", "BERTH_E2E_SERVER", "BERTH_E2E_BIN", "BERTH_TOOLS", "PATH"} {
		_ = os.Getenv(k)
	}
	if berthBin != "" {
		_, _ = os.Stat(berthBin)
	}
	if root, err := filepath.Abs(".."); err == nil {
		_, _ = os.Stat(filepath.Join(root, "cmd", "berth"))
		_ = statSources(root)
	}
}

// needServer skips the test when no server can be run (see TestMain).
func needServer(t testing.TB) {
	t.Helper()
	cacheKeyOnce.Do(cacheKey)
	if skipAll != "" {
		t.Skip(skipAll)
	}
}

// tool finds an external client binary (testtool.Find): missing, the test
// is skipped, or fails under BERTH_E2E=1.
func tool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Find(t, name)
}

// server is one running registry process.
type server struct {
	t    testing.TB
	kind string
	data string
	args []string // more arguments of berth serve
	addr string   // 127.0.0.1:PORT
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// startServer starts a registry on a free loopback port with data under
// data, waits until it is ready and stops it when the test ends.
func startServer(t testing.TB, data string) *server {
	t.Helper()
	return startServerArgs(t, data)
}

// startServerArgs is startServer with more arguments of berth serve (such as
// --config FILE); a distribution server ignores them.
func startServerArgs(t testing.TB, data string, args ...string) *server {
	t.Helper()
	needServer(t)
	s := &server{t: t, kind: serverKnd, data: data, args: args}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(fmt.Sprintf("127.0.0.1:%d", port)); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("server did not start: %v\n%s", lastErr, s.logTail())
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) start(addr string) error {
	var err error
	if s.log == nil {
		s.log, err = os.OpenFile(filepath.Join(s.t.TempDir(), "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
	}
	var cmd *exec.Cmd
	ready := "/healthz"
	switch s.kind {
	case "distribution":
		cfg := filepath.Join(s.data, "config.yml")
		conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: berth-e2e-fixed-secret\n",
			filepath.Join(s.data, "storage"), addr)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			return err
		}
		cmd = exec.Command("/usr/bin/docker-registry", "serve", cfg)
		ready = "/v2/"
	default:
		cmd = exec.Command(berthBin, append([]string{"serve", "--addr", addr, "--data", s.data}, s.args...)...)
	}
	fmt.Fprintf(s.log, "=== start %s on %s\n", s.kind, addr)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.addr, s.done = cmd, addr, done

	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("server exited at start: %v", cmd.ProcessState)
		default:
		}
		resp, err := client.Get("http://" + addr + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return errors.New("not ready within 60s")
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop asks for a graceful shutdown and kills after 15 s.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.t.Logf("server did not stop within 15s of SIGTERM; killing it")
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.logTail())
	}
}

// restart starts the server again on the same data dir (and address, if free).
func (s *server) restart() {
	s.t.Helper()
	var err error
	addrs := []string{s.addr}
	for i := 0; i < 4; i++ {
		p, perr := freePort()
		if perr != nil {
			s.t.Fatal(perr)
		}
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	for _, a := range addrs {
		if err = s.start(a); err == nil {
			return
		}
	}
	s.t.Fatalf("restart: %v\n%s", err, s.logTail())
}

func (s *server) logTail() string {
	if s.log == nil {
		return ""
	}
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) <= 8000 {
		return string(b)
	}
	// A long log's tail may not hold the error that failed the test: keep
	// every WARN and ERROR line from before the tail too.
	head, tail := b[:len(b)-8000], b[len(b)-8000:]
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(head), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			out.WriteString(line)
		}
	}
	if out.Len() > 0 {
		out.WriteString("[… warnings and errors above; the log's last 8000 bytes below]\n")
	}
	out.Write(tail)
	return out.String()
}

// logAll is everything the server wrote to stdout and stderr, every start.
func (s *server) logAll() string {
	s.t.Helper()
	if s.log == nil {
		s.t.Fatal("the server has no log")
	}
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// creds returns the initial admin's credentials once berth has authentication
// (DATA/initial-admin.json exists); ok is false while it runs anonymously.
func (s *server) creds() (user, pass string, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.data, "initial-admin.json"))
	if err != nil {
		return "", "", false
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ClientID == "" {
		return "", "", false
	}
	return c.ClientID, c.ClientSecret, true
}

func (s *server) auth() authn.Authenticator {
	if u, p, ok := s.creds(); ok {
		return &authn.Basic{Username: u, Password: p}
	}
	return authn.Anonymous
}

// ref parses REPO:TAG or REPO@DIGEST on this server.
func (s *server) ref(t testing.TB, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.addr+"/"+r, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (s *server) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithAuth(s.auth()), remote.WithContext(ctx)}
}

// run runs an external command with a timeout and fails the test with its
// output when it fails. It returns stdout.
func run(t testing.TB, dir string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), redactArgs(args), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// redactArgs hides values that follow credential flags in failure messages.
func redactArgs(args []string) string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		switch {
		case hide:
			out[i], hide = "***", false
		case a == "-p" || a == "--password" || a == "--src-creds" || a == "--dest-creds" || a == "--creds" || a == "--user":
			out[i], hide = a, true
		default:
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
