package oci_test

import (
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
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/upstream"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

// BenchmarkCachePull pulls one image with a single layer of
// BERTH_BENCH_CACHE_MIB MiB (256 by default) with go-containerregistry,
// four times a round: straight from the upstream (direct-MB/s), through a
// cache that does not hold it yet (first-MB/s: fetched, stored and streamed
// at once), and through the same cache twice more (second-MB/s, the first
// read of the stored blob, which the blob store wrote past the page cache;
// third-MB/s, from the page cache). MB/s counts the layer's bytes;
// first/direct is the first pull's speed as a fraction of the direct
// one's; direct-cpu-s/GB and first-cpu-s/GB are the CPU time the process
// (upstream, berth and client all in one) spent per GB of each. ns/op is
// a round's four pulls.
//
// It runs once with the upstream sending as fast as loopback and the CPU
// allow (upstream=loopback: upstream, berth and client share the cores, so
// the first pull, which does the most work, is bound by the CPU), and once
// for each of a few WAN-like bandwidths the upstream's blob bodies are
// limited to (upstream=100MBps, upstream=400MBps; MB is 10^6 bytes): the
// case of a real upstream, where the first pull should run at the
// upstream's pace.
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
	for _, limit := range []struct {
		name string
		rate int64 // bytes a second; 0: unlimited
	}{{"upstream=loopback", 0}, {"upstream=100MBps", 100e6}, {"upstream=400MBps", 400e6}} {
		b.Run(limit.name, func(b *testing.B) {
			up.Throttle(limit.rate)
			defer up.Throttle(0)
			benchmarkCachePull(b, up, len(data))
		})
	}
}

// benchmarkCachePull is a round of BenchmarkCachePull's pulls of
// library/big:1 from up, whose layer has size bytes.
func benchmarkCachePull(b *testing.B, up *upstreamtest.Registry, size int) {
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
		meta, blobs := openStores(b, b.TempDir())
		u, _ := berth.NewUpstream(berth.NewUpstreamRequest{Name: "hub", URL: up.URL, Namespace: "hub"}, time.Now())
		r := serveRegistry(b, meta, blobs, func(h *oci.Handler) {
			h.Cache = &oci.Cache{Upstreams: upstreamList{u}, Client: upstream.New(nil, nil)}
		})
		return r
	}
	// Each round takes the three pulls one after the other, so that they
	// share the machine's state (a shared machine's load, its page cache)
	// and their ratio means something even when the figures wander.
	var direct, first, second, third time.Duration
	var directCPU, firstCPU time.Duration
	timed := func(d *time.Duration, s string) {
		start := time.Now()
		pull(b, s)
		*d += time.Since(start)
	}
	cpu := func(d *time.Duration, f func()) {
		start := processCPU(b)
		f()
		*d += processCPU(b) - start
	}
	for b.Loop() {
		cpu(&directCPU, func() { timed(&direct, up.URL[len("http://"):]+"/library/big:1") })
		b.StopTimer()
		r := newCacheServer(b) // empty: the pull is a first one
		b.StartTimer()
		cpu(&firstCPU, func() { timed(&first, r.host+"/hub/library/big:1") })
		timed(&second, r.host+"/hub/library/big:1")
		timed(&third, r.host+"/hub/library/big:1")
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(size) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(direct), "direct-MB/s")
	b.ReportMetric(mbps(first), "first-MB/s")
	b.ReportMetric(mbps(second), "second-MB/s")
	b.ReportMetric(mbps(third), "third-MB/s")
	b.ReportMetric(direct.Seconds()/first.Seconds(), "first/direct")
	// CPU seconds of the whole process (upstream, berth and client) per
	// GB pulled: when a pull's CPU time is near the machine's cores times
	// its duration, the pull is bound by the CPU, not by waiting.
	gb := float64(b.N) * float64(size) / 1e9
	b.ReportMetric(directCPU.Seconds()/gb, "direct-cpu-s/GB")
	b.ReportMetric(firstCPU.Seconds()/gb, "first-cpu-s/GB")
}
