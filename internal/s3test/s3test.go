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
	"sync"
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
	exited   chan struct{} // closed once cmd.Wait has returned
	waitErr  error
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
		skipOrFail(t, err)
	}
	s, err := launch(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// SharedBucket is the bucket of the Shared server, made before it starts:
// the tests that share it keep apart by prefix.
const SharedBucket = "berth-test"

var shared struct {
	once    sync.Once
	srv     *Server
	err     error
	missing bool // err is Path's: the binary is not installed
}

// Shared returns one versitygw for every test of the package that asks,
// started on first use over a temporary folder holding SharedBucket. A
// missing binary skips the test, or fails it under CI=1 or BERTH_E2E=1; a
// server that does not start fails every test that asks. The package's
// TestMain stops it:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		s3test.StopShared()
//		os.Exit(code)
//	}
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		bin, err := Path()
		if err != nil {
			shared.err, shared.missing = err, true
			return
		}
		shared.srv, shared.err = launch(bin, SharedBucket)
	})
	if shared.missing {
		skipOrFail(t, shared.err)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared stops the server Shared started, if it did, and removes its
// folder.
func StopShared() {
	if shared.srv != nil {
		shared.srv.stop()
	}
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if strict() {
		t.Fatal(err)
	}
	t.Skipf("skipping: %v (CI=1 or BERTH_E2E=1 makes this a failure)", err)
}

// launch starts versitygw over a temporary folder holding buckets, on a
// free loopback port, trying three times: the port may be taken between
// choosing and binding it.
func launch(bin string, buckets ...string) (*Server, error) {
	var lastErr error
	for range 3 {
		dir, err := os.MkdirTemp("", "berth-s3-test-")
		if err != nil {
			return nil, err
		}
		for _, b := range buckets {
			if err == nil {
				err = os.Mkdir(filepath.Join(dir, b), 0o700)
			}
		}
		var s *Server
		if err == nil {
			s, err = start(bin, dir)
		}
		if err == nil {
			return s, nil
		}
		os.RemoveAll(dir)
		lastErr = err
	}
	return nil, lastErr
}

// start runs versitygw over dir and waits until it answers HTTP.
func start(bin, dir string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	endpoint := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: endpoint, dir: dir, log: &bytes.Buffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", endpoint, "--quiet", "posix", dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("versitygw exited: %v\n%s", s.waitErr, s.log)
		default:
		}
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	<-s.exited
	return nil, fmt.Errorf("versitygw did not answer on %s within 30s\n%s", endpoint, s.log)
}

// stop kills the process, waits for it, and removes its folder.
func (s *Server) stop() {
	s.cmd.Process.Kill()
	<-s.exited
	os.RemoveAll(s.dir)
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

// Dir returns the folder of the posix backend that holds bucket, one file
// per object: an object's LastModified is its file's modification time, so a
// test may age an object by changing that.
func (s *Server) Dir(bucket string) string {
	return filepath.Join(s.dir, bucket)
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
