package s3test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fixed credentials of the test service; it listens on loopback only.
const (
	AccessKey = "berth-test-access"
	SecretKey = "berth-test-secret-key-0123456789"
	Region    = "us-east-1"
)

// Server is a running versitygw over a temporary folder.
type Server struct {
	// Endpoint is 127.0.0.1:PORT.
	Endpoint string
	dir      string
	cmd      *exec.Cmd
	log      *bytes.Buffer
}

// Path finds the versitygw binary: $BERTH_VERSITYGW, then PATH, then the
// tools folder of .ci/run ($BERTH_TOOLS/bin, else ~/.cache/berth-tools/bin).
func Path() (string, error) {
	if p := os.Getenv("BERTH_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	tools := os.Getenv("BERTH_TOOLS")
	if tools == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(home, ".cache")
		}
		tools = filepath.Join(cache, "berth-tools")
	}
	p := filepath.Join(tools, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw is not set in BERTH_VERSITYGW, on PATH, or at %s; install it with: GOBIN=~/.cache/berth-tools/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (bash .ci/run does)", p)
	}
	return p, nil
}

// strict reports whether a missing binary fails the test instead of
// skipping it: under CI=1 or BERTH_E2E=1.
func strict() bool {
	ci := os.Getenv("CI")
	return ci == "1" || ci == "true" || os.Getenv("BERTH_E2E") == "1"
}

// Start runs a versitygw for the test, stopped at its end. A missing binary
// skips the test, or fails it under CI=1 or BERTH_E2E=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Path()
	if err != nil {
		if strict() {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v (CI=1 or BERTH_E2E=1 makes this a failure)", err)
	}
	var lastErr error
	for range 3 { // the port may be taken between choosing and binding it
		s, err := start(bin, t.TempDir())
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func start(bin, dir string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	endpoint := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: endpoint, dir: dir, log: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, "--port", endpoint, "--quiet", "posix", dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("versitygw exited: %v\n%s", err, s.log)
		default:
		}
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("versitygw did not answer on %s within 30s\n%s", endpoint, s.log)
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}

// Bucket creates a fresh bucket (a folder of the posix backend) and returns
// its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "b-" + strings.ToLower(rand.Text()[:16])
	if err := os.Mkdir(filepath.Join(s.dir, name), 0o700); err != nil {
		t.Fatal(err)
	}
	return name
}

// URL returns the --blobs URL of bucket on this server, with extra query
// parameters (such as "presign=true") appended.
func (s *Server) URL(bucket string, params ...string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {Region}, "insecure": {"true"}}
	u := "s3://" + bucket + "?" + q.Encode()
	for _, p := range params {
		u += "&" + p
	}
	return u
}

// Env returns the AWS variables that sign requests to this server.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}

// Getenv is a getenv that knows only Env.
func (s *Server) Getenv(k string) string {
	switch k {
	case "AWS_ACCESS_KEY_ID":
		return AccessKey
	case "AWS_SECRET_ACCESS_KEY":
		return SecretKey
	}
	return ""
}
