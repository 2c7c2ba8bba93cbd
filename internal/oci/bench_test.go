package oci_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// BenchmarkManifestGET measures the handler's cost of a manifest GET by tag,
// with no guard (open), and with the guard and a bearer token (the path every
// docker pull takes): the difference is what authentication and authorization
// add to a request.
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
		req := httptest.NewRequest("GET", "/v2/bench/app/manifests/latest", nil).WithContext(context.Background())
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					panic(w.Code)
				}
				_, _ = io.Copy(io.Discard, w.Body)
			}
		})
	}
	b.Run("open", func(b *testing.B) { run(b, open, "") })
	b.Run("bearer", func(b *testing.B) { run(b, guarded, bearer.Get("Authorization")) })
}
