package s3

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth/internal/s3test"
)

// The tests run against a real S3 service: versitygw, a Go S3 gateway,
// started once for the package by s3test.Shared on a random loopback port
// over a temporary directory, and stopped by TestMain. Each store gets a
// fresh prefix of its own in s3test.SharedBucket.

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

// config returns a Config for a fresh prefix in the shared test bucket. A
// missing versitygw skips the test, or fails it when CI=1 or BERTH_E2E=1.
func config(t testing.TB) Config {
	t.Helper()
	srv := s3test.Shared(t)
	return Config{
		Bucket:      s3test.SharedBucket,
		Prefix:      "t/" + rand.Text(),
		Endpoint:    srv.Endpoint,
		Region:      s3test.Region,
		Insecure:    true,
		Credentials: Credentials{AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey},
	}
}

// newTestStore returns a store on a fresh prefix.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, config(t))
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
