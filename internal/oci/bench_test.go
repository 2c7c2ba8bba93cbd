package oci_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// BenchmarkManifestGET measures the handler's cost of a manifest GET by tag,
// with no guard (open), and with the guard and a bearer token (the path every
// docker pull takes): the difference is what authentication and authorization
// add to a request. The request's context can be cancelled, as net/http's is.
func BenchmarkManifestGET(b *testing.B) {
	t := &testing.T{}
	g := newGuarded(t)
	g.principal("puller", "owner@registry")
	cfg := []byte("{}")
	if resp, _ := g.pushBlob(g.basic("puller"), "bench/app", cfg); resp.StatusCode != 201 {
		b.Fatalf("push config: %d", resp.StatusCode)
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		berth.DigestOf("sha256", cfg).String() + `","size":2},"layers":[]}`)
	h := g.basic("puller")
	h.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp, body := g.do("PUT", "/v2/bench/app/manifests/latest", h, manifest); resp.StatusCode != 201 {
		b.Fatalf("push manifest: %d %s", resp.StatusCode, body)
	}
	bearer := g.token("puller", "repository:bench/app:pull")

	open := &oci.Handler{Meta: g.meta, Blobs: g.blob, Uploads: g.blob, Logger: g.p.Logger, Now: g.clock.Now, NewID: func() string { return "x" }}
	guarded := &oci.Handler{Meta: g.meta, Blobs: g.blob, Uploads: g.blob, Logger: g.p.Logger, Now: g.clock.Now, NewID: func() string { return "x" }, Guard: g.p}
	run := func(b *testing.B, h http.Handler, auth string) {
		ctx, cancel := context.WithCancel(context.Background()) // as net/http gives a request
		defer cancel()
		req := httptest.NewRequest("GET", "/v2/bench/app/manifests/latest", nil).WithContext(ctx)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := newDiscardWriter()
			for pb.Next() {
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != 200 {
					panic(w.code)
				}
			}
		})
	}
	// As berth serve wires it: the pull-through cache asks, for every
	// request, whether the repository is in an upstream's namespace.
	served := &oci.Handler{Meta: g.meta, Blobs: g.blob, Uploads: g.blob, Logger: g.p.Logger, Now: g.clock.Now, NewID: func() string { return "x" }, Guard: g.p,
		Cache: &oci.Cache{Upstreams: g.meta}}
	b.Run("open", func(b *testing.B) { run(b, open, "") })
	b.Run("bearer", func(b *testing.B) { run(b, guarded, bearer.Get("Authorization")) })
	b.Run("bearer+cache", func(b *testing.B) { run(b, served, bearer.Get("Authorization")) })
}

// BenchmarkTinyPush measures the push of a tiny image through the handler, as
// crane sends it, with the guard and a bearer token, on SQLite and disk
// blobs: for the config and one 1 KiB layer each, a POST opening an upload, a
// PATCH with the bytes and a PUT closing it; then the manifest PUT. Eight
// pushes run at a time (bench/run.sh's figure (c)); one op is one image.
func BenchmarkTinyPush(b *testing.B) {
	t := &testing.T{}
	g := newGuarded(t)
	g.principal("pusher", "push@bench/*")
	auth := g.token("pusher", "repository:bench/tiny:pull,push").Get("Authorization")
	var n sync.Mutex
	var id int
	h := &oci.Handler{Meta: g.meta, Blobs: g.blob, Uploads: g.blob, Logger: g.p.Logger, Now: g.clock.Now,
		NewID:      func() string { n.Lock(); defer n.Unlock(); id++; return fmt.Sprintf("up-%d", id) },
		CommitLock: &sync.RWMutex{}, MaxManifestSize: 4 << 20, Guard: g.p}
	do := func(method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, bytes.NewReader(body)).WithContext(context.Background())
		req.Header.Set("Authorization", auth)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	push := func(b []byte) berth.Digest {
		d := berth.DigestOf("sha256", b)
		w := do("POST", "/v2/bench/tiny/blobs/uploads/", nil)
		if w.Code != 202 {
			panic(fmt.Sprintf("POST upload: %d %s", w.Code, w.Body))
		}
		loc := w.Header().Get("Location")
		if w = do("PATCH", loc, b, "Content-Type", "application/octet-stream"); w.Code != 202 {
			panic(fmt.Sprintf("PATCH upload: %d %s", w.Code, w.Body))
		}
		if w = do("PUT", loc+"?digest="+d.String(), nil); w.Code != 201 {
			panic(fmt.Sprintf("PUT upload: %d %s", w.Code, w.Body))
		}
		return d
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		layer := make([]byte, 1024)
		for pb.Next() {
			i := seq.Add(1)
			cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","n":%d}`, i)
			cd := push(cfg)
			binary.BigEndian.PutUint64(layer, uint64(i))
			ld := push(layer)
			manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":1024}]}`, cd, len(cfg), ld)
			if w := do("PUT", fmt.Sprintf("/v2/bench/tiny/manifests/v%d", i), manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); w.Code != 201 {
				panic(fmt.Sprintf("PUT manifest: %d %s", w.Code, w.Body))
			}
		}
	})
}

// discardWriter is an http.ResponseWriter that a benchmark reuses from one
// request to the next, so that the allocations it reports are the handler's,
// not a recorder's. Like net/http's response, it reads a body it is given to
// copy (a file, for sendfile) through io.ReaderFrom; io.Discard's pooled
// buffer stands in for the kernel's copy.
type discardWriter struct {
	hdr  http.Header
	code int
	n    int64
}

func newDiscardWriter() *discardWriter { return &discardWriter{hdr: http.Header{}} }

func (w *discardWriter) reset() { clear(w.hdr); w.code, w.n = 0, 0 }

func (w *discardWriter) Header() http.Header { return w.hdr }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += int64(len(p))
	return len(p), nil
}

func (w *discardWriter) ReadFrom(r io.Reader) (int64, error) {
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(io.Discard, r)
	w.n += n
	return n, err
}
