package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/s3test"
)

// TestReplicasS3 runs two berth serve processes, A and B, on one PostgreSQL
// schema and one S3 bucket (versitygw), with presigned blob redirects on,
// and no blob folder shared between them: a push through A pulls through B,
// a chunked upload started on A continues on B, a role revoked through A is
// refused by B, garbage collection killed midway on one finishes on the
// other, and a large layer pushed in one request is committed as a pointer
// (pointers=true) that the other replica serves.
func TestReplicasS3(t *testing.T) {
	needBerth(t)
	dsn := replicaSchema(t)
	gw := s3test.Start(t)
	bucket := gw.Bucket(t)
	for _, kv := range gw.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the replicas inherit the environment
	}
	a, b := startReplicas(t, dsn, "blobs: "+gw.URL(bucket, "presign=true", "pointers=true")+"\n", nil)
	r := replicas{a: a, b: b, dsn: dsn, blobs: gw.Dir(bucket)}
	if log := a.logAll() + b.logAll(); strings.Contains(log, s3test.SecretKey) || !strings.Contains(grepLine(log, "blobs="), "s3://") {
		t.Errorf("the logs show the S3 secret key, or do not name the blob store: %q", grepLine(log, "blobs="))
	}
	for _, s := range []*server{a, b} {
		if _, err := os.Stat(filepath.Join(s.data, "storage")); !os.IsNotExist(err) {
			t.Errorf("a replica on S3 made a storage folder in %s: %v", s.data, err)
		}
	}
	ctx := t.Context()

	img := randomOCIImage(t, 3, 64<<10)
	want := digestOf(t, img)
	t.Run("push through A, pull through B", func(t *testing.T) { replicasPushPull(t, r, img) })

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

	t.Run("a role revoked through A is refused by B within a second", func(t *testing.T) { replicasRevoke(t, r) })

	t.Run("a large layer committed through A as a pointer, read through B", func(t *testing.T) {
		body := randomBytes(t, 17<<20) // one PATCH of 16 MiB or more: pointed to, not copied
		d := sha256Digest(body)
		ca := authedClient(t, a, ctx, "team/large", transport.PushScope)
		cb := authedClient(t, b, ctx, "team/large", transport.PullScope)
		loc := startUpload(t, ca, a, "team/large")
		loc = patchChunk(t, ca, a, loc, body, 0)
		finishUpload(t, ca, a, loc, d)
		enc := strings.TrimPrefix(d, "sha256:")
		fi, err := os.Stat(filepath.Join(gw.Dir(bucket), "blobs", "sha256", enc[:2], enc))
		if err != nil || fi.Size() != 0 {
			t.Fatalf("the blob's key in the bucket: %v, %v; want an empty pointer", fi, err)
		}
		noFollow := *cb
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noFollow.Get(blobURL(b, "team/large", d))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "/uploads/") {
			t.Fatalf("GET through B: %s, Location %q; want a redirect to the upload's data the pointer names", resp.Status, loc)
		}
		resp, err = cb.Get(blobURL(b, "team/large", d))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("GET through B, following the redirect: %s, %d bytes (want %d)", resp.Status, len(got), len(body))
		}
	})

	// Last: it kills one replica, and collects the layer above too.
	t.Run("GC survives the collecting replica being killed", func(t *testing.T) { replicasGCKilled(t, r, want) })
}
