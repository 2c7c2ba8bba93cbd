package oci_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
)

// countingStore counts the blob store's Stat and Open calls: on an object
// store each is a request.
type countingStore struct {
	*disk.Store
	stats, opens atomic.Int64
}

func (s *countingStore) Stat(ctx context.Context, d berth.Digest) (berth.BlobInfo, error) {
	s.stats.Add(1)
	return s.Store.Stat(ctx, d)
}

func (s *countingStore) Open(ctx context.Context, d berth.Digest) (io.ReadSeekCloser, berth.BlobInfo, error) {
	s.opens.Add(1)
	return s.Store.Open(ctx, d)
}

// countingRegistry is a registry over a countingStore, with small blobs
// served from memory when small is set.
func countingRegistry(t *testing.T, small *oci.SmallBlobs) (*registry, *countingStore) {
	t.Helper()
	meta, store := openStores(t, t.TempDir())
	blobs := &countingStore{Store: store}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.SmallBlobs = small })
	return r, blobs
}

// TestSmallBlobsServedFromMemory: the second GET of a small blob opens
// nothing; a Range is answered from memory too; a blob above MaxBlob is
// always opened; the bound evicts the least recently served.
func TestSmallBlobsServedFromMemory(t *testing.T) {
	r, blobs := countingRegistry(t, &oci.SmallBlobs{MaxBlob: 8, MaxTotal: 16})
	get := func(d berth.Digest, rng string) []byte {
		t.Helper()
		h := http.Header{}
		if rng != "" {
			h.Set("Range", rng)
		}
		resp, body := r.do("GET", "/v2/app/blobs/"+d.String(), h, nil)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("GET %s: %d %s", d, resp.StatusCode, body)
		}
		return body
	}
	a, b, c := pushBlob(t, r, "app", []byte("aaaaaaaa")), pushBlob(t, r, "app", []byte("bbbbbbbb")), pushBlob(t, r, "app", []byte("cccccccc"))
	big := pushBlob(t, r, "app", []byte("more than eight"))
	opens := func() int64 { return blobs.opens.Load() }

	get(a, "")
	n := opens()
	if got := get(a, ""); !bytes.Equal(got, []byte("aaaaaaaa")) || opens() != n {
		t.Fatalf("second GET: %q, %d more opens", got, opens()-n)
	}
	if got := get(a, "bytes=2-4"); string(got) != "aaa" || opens() != n {
		t.Fatalf("a Range from memory: %q, %d more opens", got, opens()-n)
	}
	get(big, "")
	get(big, "")
	if opens() != n+2 {
		t.Fatalf("a blob above MaxBlob: %d opens, want 2", opens()-n)
	}
	get(b, "") // a, b kept: 16 bytes
	get(a, "") // a most recent
	get(c, "") // evicts b
	n = opens()
	get(a, "")
	get(c, "")
	if opens() != n {
		t.Fatal("a or c was evicted, b should have been")
	}
	get(b, "")
	if opens() != n+1 {
		t.Fatal("b was kept beyond the bound")
	}
}

// BenchmarkSmallBlobGET measures a 4 KiB blob GET through the handler, with
// the blob opened from disk each time and served from memory.
func BenchmarkSmallBlobGET(b *testing.B) {
	for _, c := range []struct {
		name  string
		small *oci.SmallBlobs
	}{{"open", nil}, {"memory", &oci.SmallBlobs{MaxBlob: 64 << 10, MaxTotal: 32 << 20}}} {
		b.Run(c.name, func(b *testing.B) {
			meta, store := openStores(b, b.TempDir())
			defer meta.Close()
			payload := make([]byte, 4096)
			rand.Read(payload)
			d := berth.DigestOf("sha256", payload)
			if _, err := store.Put(context.Background(), d, int64(len(payload)), bytes.NewReader(payload)); err != nil {
				b.Fatal(err)
			}
			if err := meta.LinkBlob(context.Background(), berth.BlobLink{Repository: "app", Digest: d, Size: 4096}); err != nil {
				b.Fatal(err)
			}
			h := &oci.Handler{Meta: meta, Blobs: store, Uploads: store, SmallBlobs: c.small, NewID: func() string { return "x" }}
			ctx, cancel := context.WithCancel(context.Background()) // as net/http gives a request
			defer cancel()
			req := httptest.NewRequest("GET", "/v2/app/blobs/"+d.String(), nil).WithContext(ctx)
			b.ReportAllocs()
			b.SetBytes(4096)
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscardWriter()
				for pb.Next() {
					w.reset()
					h.ServeHTTP(w, req)
					if w.code != 200 || w.n != 4096 {
						panic(w.code)
					}
				}
			})
		})
	}
}
