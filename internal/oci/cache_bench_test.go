package oci_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/upstream"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

// BenchmarkCachePull pulls one image with a single layer of
// BERTH_BENCH_CACHE_MIB MiB (256 by default) with go-containerregistry, in
// the same run: straight from the upstream (direct), through a cache that
// does not hold it yet (first: fetched, stored and streamed at once), and
// through a cache that holds it (second). MB/s counts the layer's bytes.
//
//	go test ./internal/oci -run '^$' -bench CachePull -benchtime 3x
func BenchmarkCachePull(b *testing.B) {
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("BERTH_BENCH_CACHE_MIB")); err == nil && v > 0 {
		mib = v
	}
	data := make([]byte, mib<<20)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	layer := static.NewLayer(data, types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		b.Fatal(err)
	}
	up := upstreamtest.New(b, "", "")
	ref, _ := name.ParseReference(up.PushHost+"/library/big:1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	pull := func(b *testing.B, s string) {
		r, err := name.ParseReference(s, name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		got, err := remote.Image(r)
		if err != nil {
			b.Fatal(err)
		}
		ls, err := got.Layers()
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range ls {
			rc, err := l.Compressed() // verifies the digest as it reads
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
		if _, err := got.RawConfigFile(); err != nil {
			b.Fatal(err)
		}
	}
	newCacheServer := func(b *testing.B) *registry {
		dir := b.TempDir()
		meta, err := sqlite.Open(context.Background(), dir+"/metadata.db")
		if err != nil {
			b.Fatal(err)
		}
		blobs, err := disk.New(dir + "/storage")
		if err != nil {
			b.Fatal(err)
		}
		u, _ := berth.NewUpstream(berth.NewUpstreamRequest{Name: "hub", URL: up.URL, Namespace: "hub"}, time.Now())
		t := &testing.T{}
		r := serveRegistry(t, meta, blobs, func(h *oci.Handler) {
			h.Cache = &oci.Cache{Upstreams: upstreamList{u}, Client: upstream.New(nil, nil)}
		})
		return r
	}
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			pull(b, up.URL[len("http://"):]+"/library/big:1")
		}
	})
	b.Run("first", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			b.StopTimer()
			r := newCacheServer(b) // empty: every pull is a first one
			b.StartTimer()
			pull(b, r.host+"/hub/library/big:1")
		}
	})
	b.Run("second", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		r := newCacheServer(b)
		pull(b, r.host+"/hub/library/big:1") // fills the cache
		for b.Loop() {
			pull(b, r.host+"/hub/library/big:1")
		}
	})
}
