package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/s3test"
)

// TestReplicasS3 runs two berth serve processes, A and B, on one PostgreSQL
// schema and one S3 bucket (versitygw), with presigned blob redirects on,
// and no blob folder shared between them: a push through A pulls through B,
// and a chunked upload started on A continues on B.
func TestReplicasS3(t *testing.T) {
	needBerth(t)
	dsn := replicaSchema(t)
	gw := s3test.Start(t)
	blobs := gw.URL(gw.Bucket(t), "presign=true")
	for _, kv := range gw.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the replicas inherit the environment
	}
	root := t.TempDir()
	kek := make([]byte, 32)
	rand.Read(kek)
	cfg := filepath.Join(root, "berth.yaml")
	conf := fmt.Sprintf("key_encryption_key: %s\nblobs: %s\n", base64.StdEncoding.EncodeToString(kek), blobs)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	dataA, dataB := filepath.Join(root, "a"), filepath.Join(root, "b")
	a := startServerArgs(t, dataA, "--config", cfg, "--db", withAppName(dsn, "berth-a"))
	b := startServerArgs(t, dataB, "--config", cfg, "--db", withAppName(dsn, "berth-b"))
	admin, err := os.ReadFile(filepath.Join(dataA, "initial-admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "initial-admin.json"), admin, 0o600); err != nil {
		t.Fatal(err)
	}
	if log := a.logAll() + b.logAll(); strings.Contains(log, s3test.SecretKey) || !strings.Contains(grepLine(log, "blobs="), "s3://") {
		t.Errorf("the logs show the S3 secret key, or do not name the blob store: %q", grepLine(log, "blobs="))
	}
	for _, d := range []string{dataA, dataB} {
		if _, err := os.Stat(filepath.Join(d, "storage")); !os.IsNotExist(err) {
			t.Errorf("a replica on S3 made a storage folder in %s: %v", d, err)
		}
	}
	ctx := t.Context()

	img := randomOCIImage(t, 3, 64<<10)
	want := digestOf(t, img)
	t.Run("push through A, pull through B", func(t *testing.T) {
		if err := remote.Write(a.ref(t, "team/app:v1"), img, a.remoteOpts(ctx)...); err != nil {
			t.Fatal(err)
		}
		checkImage(t, b, "team/app", "v1", want, b.remoteOpts(ctx))
	})

	t.Run("chunked upload split across A and B", func(t *testing.T) {
		// Parts of at least 5 MiB but the last, as S3 multipart uploads need.
		body := randomBytes(t, 11<<20)
		d := sha256Digest(body)
		ca := authedClient(t, a, ctx, "team/chunked", transport.PushScope)
		cb := authedClient(t, b, ctx, "team/chunked", transport.PushScope)
		loc := startUpload(t, ca, a, "team/chunked")
		loc = patchChunk(t, ca, a, loc, body[:5<<20], 0)
		loc = patchChunk(t, cb, b, loc, body[5<<20:10<<20], 5<<20)
		if n, _ := uploadOffset(t, ca, a, loc); n != 10<<20 {
			t.Fatalf("A sees %d bytes of the upload, want %d", n, 10<<20)
		}
		loc = patchChunk(t, ca, a, loc, body[10<<20:], 10<<20)
		finishUpload(t, cb, b, loc, d)
		// Through A, which redirects the GET to the bucket.
		noFollow := *ca
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noFollow.Get(blobURL(a, "team/chunked", d))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "http://"+gw.Endpoint+"/") {
			t.Fatalf("GET the blob through A: %s, Location %q; want a redirect to the bucket", resp.Status, resp.Header.Get("Location"))
		}
		resp, err = ca.Get(blobURL(a, "team/chunked", d))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("GET the blob through A, following the redirect: %s, %d bytes (want %d)", resp.Status, len(got), len(body))
		}
	})
}
