package s3

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The tests run against a real S3 service: versitygw, a Go S3 gateway,
// started once for the package on a random loopback port over a temporary
// directory, and stopped by TestMain. Each store gets a fresh prefix (or
// bucket) of its own.

const (
	testAccessKey = "berth-test-access"
	testSecretKey = "berth-test-secret-key-0123456789"
	testBucket    = "berth-test"
)

// versitygwPath finds the binary: $BERTH_VERSITYGW, then PATH, then the tools
// folder of .ci/run ($BERTH_TOOLS/bin, else ~/.cache/berth-tools/bin).
func versitygwPath() (string, error) {
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
		return "", fmt.Errorf("versitygw is not set in BERTH_VERSITYGW, on PATH, or at %s", p)
	}
	return p, nil
}

type server struct {
	endpoint string
	cmd      *exec.Cmd
	dir      string
	log      *bytes.Buffer
}

var (
	srvOnce sync.Once
	srv     *server
	srvErr  error
	srvSkip bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.stop()
	}
	os.Exit(code)
}

// testServer returns the package's running versitygw, starting it on first
// use. A missing binary skips the test, or fails it when CI=1.
func testServer(t testing.TB) *server {
	t.Helper()
	srvOnce.Do(func() {
		bin, err := versitygwPath()
		if err != nil {
			srvSkip = true
			srvErr = fmt.Errorf("%v; install it with: GOBIN=~/.cache/berth-tools/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (bash .ci/run does)", err)
			return
		}
		srv, srvErr = startServer(bin)
	})
	if srvErr != nil {
		ci := os.Getenv("CI")
		if srvSkip && ci != "1" && ci != "true" && os.Getenv("BERTH_E2E") != "1" {
			t.Skipf("skipping: %v (CI=1 or BERTH_E2E=1 makes this a failure)", srvErr)
		}
		t.Fatal(srvErr)
	}
	return srv
}

func startServer(bin string) (*server, error) {
	var lastErr error
	for range 3 { // the port may be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "berth-s3-test-")
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(dir, testBucket), 0o700); err != nil {
			return nil, err
		}
		s := &server{endpoint: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, log: &bytes.Buffer{}}
		s.cmd = exec.Command(bin, "--port", s.endpoint, "--quiet", "posix", dir)
		s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testAccessKey, "ROOT_SECRET_KEY="+testSecretKey)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		if lastErr = s.waitReady(30 * time.Second); lastErr == nil {
			return s, nil
		}
		s.stop()
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until the gateway answers HTTP.
func (s *server) waitReady(timeout time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("versitygw exited: %v\n%s", err, s.log)
		default:
		}
		resp, err := http.Get("http://" + s.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within %s\n%s", s.endpoint, timeout, s.log)
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Process.Wait()
	}
	os.RemoveAll(s.dir)
}

// adminClient talks to the gateway as the root user, to create buckets and
// inspect keys behind the store's back.
func (s *server) adminClient(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.endpoint, &minio.Options{Creds: credentials.NewStaticV4(testAccessKey, testSecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// config returns a Config for a fresh prefix in the test bucket.
func (s *server) config(t testing.TB) Config {
	t.Helper()
	return Config{
		Bucket:      testBucket,
		Prefix:      "t/" + rand.Text(),
		Endpoint:    s.endpoint,
		Region:      "us-east-1",
		Insecure:    true,
		Credentials: Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
	}
}

// newTestStore returns a store on a fresh prefix.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	srv := testServer(t)
	return openStore(t, srv.config(t))
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// keys lists every key under the store's prefix.
func keys(t testing.TB, s *Store) []string {
	t.Helper()
	var ks []string
	for o := range s.client.ListObjects(context.Background(), s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if !strings.HasSuffix(o.Key, "/") {
			ks = append(ks, strings.TrimPrefix(o.Key, s.prefix))
		}
	}
	return ks
}
