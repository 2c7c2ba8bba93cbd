package oci_test

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/upstream"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

// upstreamList is the upstreams a test registers: configuration, not a store.
type upstreamList []berth.Upstream

func (l upstreamList) FindUpstreams(context.Context) ([]berth.Upstream, error) { return l, nil }

// testClock is the one clock of a cache test; tests move it, never sleep.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type cacheEnv struct {
	*registry
	up    *upstreamtest.Registry
	clock *testClock
	logs  *strings.Builder
	logMu *sync.Mutex
	// What a restart keeps: the data folder and the configuration.
	dir   string
	ups   upstreamList
	edit  []func(*oci.Cache)
	blobs *disk.Store
}

// logged returns what the registry has logged so far.
func (c *cacheEnv) logged() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.logs.String()
}

// newCache serves a berth registry whose namespace hub caches up, reached
// with user and pass (none when user is ""), tags re-checked after an hour.
func newCache(t *testing.T, up *upstreamtest.Registry, user, pass string, edit ...func(*oci.Cache)) *cacheEnv {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	u, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: "dockerhub", URL: up.URL, Namespace: "hub",
		Username: user, Password: berth.UpstreamPasswordOf(pass), TagTTL: time.Hour}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return serveCache(t, &cacheEnv{up: up, clock: clock, dir: t.TempDir(), ups: upstreamList{u}, edit: edit})
}

// serveCache serves a registry over the data folder and configuration of
// c, with a new cache, and returns it.
func serveCache(t *testing.T, c *cacheEnv) *cacheEnv {
	t.Helper()
	meta, err := sqlite.Open(context.Background(), c.dir+"/metadata.db")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(c.dir + "/storage")
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	logMu := &sync.Mutex{}
	cache := &oci.Cache{Upstreams: c.ups, Client: upstream.New(nil, c.clock.Now)}
	for _, e := range c.edit {
		e(cache)
	}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) {
		h.Now = c.clock.Now
		h.Logger = slog.New(slog.NewTextHandler(lockedWriter{logMu, logs}, nil))
		h.Cache = cache
	})
	return &cacheEnv{registry: r, up: c.up, clock: c.clock, logs: logs, logMu: logMu, dir: c.dir, ups: c.ups, edit: c.edit, blobs: blobs}
}

// restart serves what c holds as a registry started anew would: new
// metadata and blob stores over the same data folder, a new cache (with
// nothing in memory), the same upstreams and clock. c goes on serving.
func (c *cacheEnv) restart(t *testing.T) *cacheEnv {
	t.Helper()
	return serveCache(t, c)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// pushUpstream puts img at repo:tag of the upstream.
func pushUpstream(t *testing.T, up *upstreamtest.Registry, repo, tag string, img v1.Image) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(up.PushHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// pullAll pulls ref through the cache (one platform's image of an index,
// with remote.WithPlatform), reads every layer and returns the image's
// digest and the layers' bytes.
func pullAll(t *testing.T, r *registry, ref string, opts ...remote.Option) (v1.Hash, [][]byte) {
	t.Helper()
	img, err := remote.Image(r.ref(ref), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	layers, _ := img.Layers()
	var out [][]byte
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return d, out
}

func TestCachePullThrough(t *testing.T) {
	up := upstreamtest.New(t, "bot", "right")
	img, _ := random.Image(4096, 3, random.WithSource(rand.NewSource(7)))
	want := pushUpstream(t, up, "library/alpine", "3.20", img)
	c := newCache(t, up, "bot", "right")

	// Docker Hub's shortening applies only to Docker Hub: here the full name.
	got, layers := pullAll(t, c.registry, "hub/library/alpine:3.20")
	if got != want {
		t.Fatalf("pulled %s through the cache, upstream has %s", got, want)
	}
	wantLayers, _ := img.Layers()
	for i, l := range wantLayers {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		if string(b) != string(layers[i]) {
			t.Errorf("layer %d differs from the upstream's", i)
		}
	}
	if n := c.up.ManifestGets.Load(); n != 1 {
		t.Errorf("first pull: %d manifest GETs upstream, want 1", n)
	}
	if n := c.up.BlobGets.Load(); n != 4 { // config and three layers
		t.Errorf("first pull: %d blob GETs upstream, want 4", n)
	}

	// The second pull, by tag and by digest, does not touch the upstream.
	before := c.up.Fetches() + c.up.ManifestHeads.Load() + c.up.BlobHeads.Load()
	if d, _ := pullAll(t, c.registry, "hub/library/alpine:3.20"); d != want {
		t.Fatalf("second pull: %s", d)
	}
	if d, _ := pullAll(t, c.registry, "hub/library/alpine@"+want.String()); d != want {
		t.Fatalf("pull by digest: %s", d)
	}
	if after := c.up.Fetches() + c.up.ManifestHeads.Load() + c.up.BlobHeads.Load(); after != before {
		t.Errorf("the second pull made %d requests upstream", after-before)
	}
	// What the cache holds is stored as any pushed image is: the tag is listed.
	resp, body := c.do("GET", "/v2/hub/library/alpine/tags/list", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"3.20"`) {
		t.Errorf("tags list: %d %s", resp.StatusCode, body)
	}
}

func TestCachePullIndexAnonymous(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	idx, _ := random.Index(512, 2, 2, random.WithSource(rand.NewSource(8)))
	ref, _ := name.ParseReference(up.PushHost+"/library/multi:1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, up, "", "")
	got, err := remote.Index(c.ref("hub/library/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("index %s, want %s", d, want)
	}
	before := c.up.Fetches()
	got, err = remote.Index(c.ref("hub/library/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatal(err)
	}
	if after := c.up.Fetches(); after != before {
		t.Errorf("the second pull of the index fetched %d times upstream", after-before)
	}
}

// pushIndexUpstream puts at repo:tag of up an index of one random image
// per platform, as Docker Hub serves almost every tag, and returns the
// index's digest and the images, in the order of platforms.
func pushIndexUpstream(t *testing.T, up *upstreamtest.Registry, repo, tag string, seed int64, platforms ...v1.Platform) (v1.Hash, []v1.Image) {
	t.Helper()
	var adds []mutate.IndexAddendum
	var imgs []v1.Image
	for i, p := range platforms {
		img, err := random.Image(1024, 2, random.WithSource(rand.NewSource(seed+int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	ref, err := name.ParseReference(up.PushHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d, imgs
}

func imageDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	linuxS390X = v1.Platform{OS: "linux", Architecture: "s390x"}
)

// TestCacheIndexStoredAtOnce: the index of a multi-platform tag is stored
// with the first pull of one platform, not held until every child it names
// is in (which, with clients pulling one platform each, is never). Another
// platform pulled later costs the upstream its own manifest only.
func TestCacheIndexStoredAtOnce(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.New(t, "", "")
	idx, imgs := pushIndexUpstream(t, up, "library/alpine", "3.20", 70, linuxAMD64, linuxARM64)
	c := newCache(t, up, "", "")
	if d, _ := pullAll(t, c.registry, "hub/library/alpine:3.20", remote.WithPlatform(linuxAMD64)); d != imageDigest(t, imgs[0]) {
		t.Fatalf("pulled %s for linux/amd64, want %s", d, imageDigest(t, imgs[0]))
	}
	m, err := c.meta.FindManifest(ctx, "hub/library/alpine", "3.20")
	if err != nil || m.Digest.String() != idx.String() {
		t.Fatalf("the index in the metadata store: %v, %v; want %s stored under its tag", m, err, idx)
	}
	if _, err := c.meta.FindManifest(ctx, "hub/library/alpine", imageDigest(t, imgs[1]).String()); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("the child never pulled: %v, want manifest_unknown", err)
	}

	gets := up.ManifestGets.Load()
	if d, _ := pullAll(t, c.registry, "hub/library/alpine:3.20", remote.WithPlatform(linuxARM64)); d != imageDigest(t, imgs[1]) {
		t.Fatalf("pulled %s for linux/arm64, want %s", d, imageDigest(t, imgs[1]))
	}
	if n := up.ManifestGets.Load() - gets; n != 1 {
		t.Errorf("the second platform made %d manifest GETs upstream, want 1 (its own)", n)
	}
	for _, img := range imgs {
		if _, err := c.meta.FindManifest(ctx, "hub/library/alpine", imageDigest(t, img).String()); err != nil {
			t.Errorf("child %s once pulled: %v", imageDigest(t, img), err)
		}
	}
}

// TestCacheIndexSurvivesRestart: one platform of a multi-platform tag is
// pulled; garbage collection runs; berth restarts while the upstream is
// down. The tag is served from what berth stored, stale (the re-check
// failed), and so are the pulled platform's manifest and blobs; a platform
// never pulled is upstream_unreachable.
func TestCacheIndexSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.New(t, "", "")
	idx, imgs := pushIndexUpstream(t, up, "library/alpine", "3.20", 80, linuxAMD64, linuxARM64, linuxS390X)
	c := newCache(t, up, "", "")
	if d, _ := pullAll(t, c.registry, "hub/library/alpine:3.20", remote.WithPlatform(linuxARM64)); d != imageDigest(t, imgs[1]) {
		t.Fatalf("pulled %s for linux/arm64, want %s", d, imageDigest(t, imgs[1]))
	}

	// Everything is past its grace period: GC keeps what the index needs.
	now := c.clock.Now()
	if real := time.Now(); real.After(now) {
		now = real // the disk store's files carry real times
	}
	rep, err := (&berth.GC{Meta: c.meta, Blobs: c.blobs, Uploads: c.blobs, Grace: time.Hour}).Run(ctx, now.Add(48*time.Hour))
	if err != nil || len(rep.Links) != 0 || len(rep.Blobs) != 0 {
		t.Fatalf("GC: %v; removed links %v and blobs %v, want none", err, rep.Links, rep.Blobs)
	}

	up.Stop()
	c.clock.Add(2 * time.Hour) // past the TTL: the tag is re-checked, and that fails
	r := c.restart(t)
	if d, layers := pullAll(t, r.registry, "hub/library/alpine:3.20", remote.WithPlatform(linuxARM64)); d != imageDigest(t, imgs[1]) || len(layers) != 2 {
		t.Fatalf("after the restart, with the upstream down: %s and %d layers, want %s and 2", d, len(layers), imageDigest(t, imgs[1]))
	}
	resp, body := r.do("GET", "/v2/hub/library/alpine/manifests/3.20", http.Header{"Accept": {string(types.OCIImageIndex)}}, nil)
	if resp.StatusCode != 200 || berth.DigestOf("", body).String() != idx.String() {
		t.Fatalf("the tag after the restart: %d %s, want the index %s", resp.StatusCode, body, idx)
	}
	if w := resp.Header.Get("Warning"); !strings.HasPrefix(w, "110 berth ") || !strings.Contains(w, string(berth.CodeUpstreamUnreachable)) {
		t.Errorf("the stale index's Warning %q, want 110 with upstream_unreachable", w)
	}
	resp, body = r.do("GET", "/v2/hub/library/alpine/manifests/"+imageDigest(t, imgs[2]).String(), nil, nil)
	expectError(t, resp, body, http.StatusBadGateway, berth.CodeUpstreamUnreachable)
}

func TestCacheTagTTL(t *testing.T) {
	up := upstreamtest.New(t, "bot", "right")
	first, _ := random.Image(512, 1, random.WithSource(rand.NewSource(1)))
	second, _ := random.Image(512, 1, random.WithSource(rand.NewSource(2)))
	d1 := pushUpstream(t, up, "team/base", "stable", first)
	c := newCache(t, up, "bot", "right")
	if d, _ := pullAll(t, c.registry, "hub/team/base:stable"); d != d1 {
		t.Fatalf("first pull %s, want %s", d, d1)
	}
	d2 := pushUpstream(t, up, "team/base", "stable", second) // the tag moves upstream

	c.clock.Add(59 * time.Minute)
	if d, _ := pullAll(t, c.registry, "hub/team/base:stable"); d != d1 {
		t.Errorf("within the TTL: %s, want the cached %s", d, d1)
	}
	if n := c.up.ManifestHeads.Load(); n != 0 {
		t.Errorf("within the TTL: %d HEADs upstream", n)
	}
	c.clock.Add(2 * time.Minute)
	if d, _ := pullAll(t, c.registry, "hub/team/base:stable"); d != d2 {
		t.Errorf("after the TTL: %s, want the moved %s", d, d2)
	}
	if n := c.up.ManifestHeads.Load(); n != 1 {
		t.Errorf("after the TTL: %d HEADs upstream, want 1", n)
	}
	// An unmoved tag costs one HEAD per TTL and no GET.
	gets := c.up.ManifestGets.Load()
	c.clock.Add(61 * time.Minute)
	if d, _ := pullAll(t, c.registry, "hub/team/base:stable"); d != d2 {
		t.Errorf("unmoved: %s", d)
	}
	if n := c.up.ManifestGets.Load(); n != gets {
		t.Errorf("an unmoved tag was fetched again (%d GETs)", n-gets)
	}
}

func TestCacheUpstreamDown(t *testing.T) {
	up := upstreamtest.New(t, "bot", "right")
	img, _ := random.Image(512, 2, random.WithSource(rand.NewSource(3)))
	want := pushUpstream(t, up, "library/alpine", "3.20", img)
	c := newCache(t, up, "bot", "right")
	pullAll(t, c.registry, "hub/library/alpine:3.20")

	up.Stop()
	c.clock.Add(2 * time.Hour) // past the TTL: the re-check fails
	if d, _ := pullAll(t, c.registry, "hub/library/alpine:3.20"); d != want {
		t.Fatalf("cached image while the upstream is down: %s", d)
	}
	resp, _ := c.do("GET", "/v2/hub/library/alpine/manifests/3.20", http.Header{"Accept": {string(mustMediaType(t, img))}}, nil)
	if w := resp.Header.Get("Warning"); resp.StatusCode != 200 || !strings.HasPrefix(w, "110 berth ") || !strings.Contains(w, "upstream_unreachable") || !strings.Contains(w, "dockerhub") {
		t.Errorf("stale answer: %d, Warning %q", resp.StatusCode, w)
	}
	if logs := c.logged(); !strings.Contains(logs, "tag=3.20") || !strings.Contains(logs, "reason=upstream_unreachable") {
		t.Errorf("no log line for the stale answer:\n%s", c.logged())
	}
	resp, body := c.do("GET", "/v2/hub/library/other/manifests/1", nil, nil)
	expectError(t, resp, body, http.StatusBadGateway, berth.CodeUpstreamUnreachable)
	if !strings.Contains(string(body), "dockerhub") {
		t.Errorf("the refusal does not name the upstream: %s", body)
	}
}

func mustMediaType(t *testing.T, img v1.Image) string {
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return string(mt)
}

func TestCacheUpstreamRefusals(t *testing.T) {
	up := upstreamtest.New(t, "bot", "right")
	img, _ := random.Image(512, 1, random.WithSource(rand.NewSource(4)))
	pushUpstream(t, up, "library/alpine", "3.20", img)

	c := newCache(t, up, "bot", "wrong")
	resp, body := c.do("GET", "/v2/hub/library/alpine/manifests/3.20", nil, nil)
	expectError(t, resp, body, http.StatusBadGateway, berth.CodeUpstreamAuthFailed)
	for _, s := range []string{"dockerhub", "incorrect username or password", "--password-stdin"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("upstream_auth_failed lacks %q: %s", s, body)
		}
	}
	if strings.Contains(string(body), "wrong") {
		t.Errorf("the refusal shows the stored password: %s", body)
	}

	ok := newCache(t, up, "bot", "right")
	up.RateLimit("30")
	resp, body = ok.do("GET", "/v2/hub/library/alpine/manifests/3.20", nil, nil)
	expectError(t, resp, body, http.StatusTooManyRequests, berth.CodeUpstreamRateLimited)
	if resp.Header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After %q, want the upstream's 30", resp.Header.Get("Retry-After"))
	}
	up.RateLimit("")
	resp, body = ok.do("GET", "/v2/hub/library/nope/manifests/1", nil, nil)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeManifestUnknown)
}

func TestCacheRefusesPush(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	c := newCache(t, up, "", "")
	img, _ := random.Image(256, 1)
	err := remote.Write(c.ref("hub/library/alpine:mine"), img)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusForbidden || !strings.Contains(err.Error(), "cache namespace hub") {
		t.Fatalf("push into the cache namespace: %v", err)
	}
	resp, body := c.do("POST", "/v2/hub/library/alpine/blobs/uploads/", nil, nil)
	expectError(t, resp, body, http.StatusForbidden, berth.CodeCacheReadOnly)
	resp, body = c.do("PUT", "/v2/hub/x/manifests/1", http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, []byte("{}"))
	expectError(t, resp, body, http.StatusForbidden, berth.CodeCacheReadOnly)
	// Outside the namespace, pushes work as ever.
	if err := remote.Write(c.ref("team/alpine:mine"), img); err != nil {
		t.Fatal(err)
	}
}

func TestCacheConcurrentFirstPulls(t *testing.T) {
	up := upstreamtest.New(t, "bot", "right")
	img, _ := random.Image(1<<20, 2, random.WithSource(rand.NewSource(5)))
	want := pushUpstream(t, up, "library/alpine", "3.20", img)
	c := newCache(t, up, "bot", "right")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := remote.Image(c.ref("hub/library/alpine:3.20"))
			if err == nil {
				err = validate.Image(got)
			}
			if err == nil {
				if d, _ := got.Digest(); d != want {
					err = errors.New("wrong digest " + d.String())
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := up.ManifestGets.Load(); n != 1 {
		t.Errorf("eight concurrent first pulls made %d manifest GETs upstream, want 1", n)
	}
	if n := up.BlobGets.Load(); n != 3 {
		t.Errorf("eight concurrent first pulls made %d blob GETs upstream, want 3", n)
	}
}

// TestCacheEviction fills a cache namespace, then evicts it down to a
// bound: the least recently pulled image goes, and a pull of it fetches it
// again.
func TestCacheEviction(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.New(t, "", "")
	imgs := map[string]v1.Image{}
	for i, tag := range []string{"a", "b", "c"} {
		img, _ := random.Image(64<<10, 1, random.WithSource(rand.NewSource(int64(20+i))))
		pushUpstream(t, up, "library/base", tag, img)
		imgs[tag] = img
	}
	c := newCache(t, up, "", "")
	for _, tag := range []string{"a", "b", "c"} {
		pullAll(t, c.registry, "hub/library/base:"+tag)
		c.clock.Add(time.Hour)
	}
	// a is pulled again last: b is now the least recently used.
	da, _ := imgs["a"].Digest()
	if err := c.meta.RecordPulls(ctx, []berth.ManifestPull{{Repository: "hub/library/base", Digest: berth.Digest(da.String()), Time: c.clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	scope, _ := berth.ParseScope("hub/*")
	usage, err := c.meta.QuotaUsage(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	u := berth.Upstream{Name: "dockerhub", Namespace: "hub", MaxSize: usage.Bytes - 1}
	plan, err := berth.EvictCache(ctx, c.meta, u, true)
	if err != nil || len(plan) != 1 || plan[0].Tags[0] != "b" {
		t.Fatalf("dry run: %+v, %v; want b, the least recently pulled", plan, err)
	}
	if _, err := c.meta.FindManifest(ctx, "hub/library/base", "b"); err != nil {
		t.Fatalf("a dry run evicted: %v", err)
	}
	evicted, err := berth.EvictCache(ctx, c.meta, u, false)
	if err != nil || len(evicted) != 1 {
		t.Fatalf("evict: %+v, %v", evicted, err)
	}
	if _, err := c.meta.FindManifest(ctx, "hub/library/base", "b"); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Errorf("b is still cached: %v", err)
	}
	for _, tag := range []string{"a", "c"} {
		if _, err := c.meta.FindManifest(ctx, "hub/library/base", tag); err != nil {
			t.Errorf("%s was evicted too: %v", tag, err)
		}
	}
	gets := up.ManifestGets.Load()
	want, _ := imgs["b"].Digest()
	if d, _ := pullAll(t, c.registry, "hub/library/base:b"); d != want {
		t.Errorf("b after eviction: %s", d)
	}
	if up.ManifestGets.Load() != gets+1 {
		t.Error("the evicted image was not fetched again")
	}
	// Without a bound, nothing is evicted.
	if ev, err := berth.EvictCache(ctx, c.meta, berth.Upstream{Name: "dockerhub", Namespace: "hub"}, false); err != nil || len(ev) != 0 {
		t.Errorf("no bound: %v, %v", ev, err)
	}
}

// TestCacheClientHangsUp: the first client of a blob goes away midway; the
// fetch goes on, the blob is stored, and the next client is served from
// berth without a second fetch.
func TestCacheClientHangsUp(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(8<<20, 1, random.WithSource(rand.NewSource(30)))
	pushUpstream(t, up, "library/big", "1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	c := newCache(t, up, "", "")

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + c.host + "/v2/hub/library/big/blobs/" + ld.String())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Fatalf("first GET: %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // hangs up with most of the blob unread
	tr.CloseIdleConnections()

	resp2, body := c.do("GET", "/v2/hub/library/big/blobs/"+ld.String(), nil, nil)
	if resp2.StatusCode != 200 || berth.DigestOf("", body) != berth.Digest(ld.String()) {
		t.Fatalf("second GET: %d, %d bytes", resp2.StatusCode, len(body))
	}
	if n := up.BlobGets.Load(); n != 1 {
		t.Errorf("%d blob GETs upstream, want 1: the first fetch went on without its client", n)
	}
}

// TestCacheSharedLayer: a layer berth holds already, fetched through
// another repository, is linked into the next one once the upstream
// confirms that repository has it (a HEAD), not fetched again.
func TestCacheSharedLayer(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	layer := func() v1.Layer {
		l, err := random.Layer(1024, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	shared := layer()
	a, _ := mutate.AppendLayers(empty.Image, shared, layer())
	b, _ := mutate.AppendLayers(empty.Image, shared, layer())
	pushUpstream(t, up, "library/a", "1", a)
	want := pushUpstream(t, up, "library/b", "1", b)
	c := newCache(t, up, "", "")
	pullAll(t, c.registry, "hub/library/a:1")
	gets, heads := up.BlobGets.Load(), up.BlobHeads.Load()
	if d, _ := pullAll(t, c.registry, "hub/library/b:1"); d != want {
		t.Fatalf("pulled %s, want %s", d, want)
	}
	// b's config and own layer are fetched; the shared layer only asked about.
	if n := up.BlobGets.Load() - gets; n != 2 {
		t.Errorf("%d blob GETs for the second image, want 2 (config and its own layer)", n)
	}
	if n := up.BlobHeads.Load() - heads; n != 1 {
		t.Errorf("%d blob HEADs for the second image, want 1 (the shared layer)", n)
	}
}

// hostRewriter sends every request to target, whatever host it names: a
// Docker Hub upstream served by a loopback registry.
type hostRewriter struct{ target string }

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", h.target
	return http.DefaultTransport.RoundTrip(r)
}

// TestCacheDockerHubShortName: through a Docker Hub upstream, hub/alpine is
// Docker Hub's library/alpine, as docker pull alpine is.
func TestCacheDockerHubShortName(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(512, 1, random.WithSource(rand.NewSource(40)))
	want := pushUpstream(t, up, "library/alpine", "3.20", img)
	u, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: "dockerhub", URL: "https://registry-1.docker.io", Namespace: "hub"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	meta, blobs := openStores(t, t.TempDir())
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) {
		h.Cache = &oci.Cache{Upstreams: upstreamList{u}, Client: upstream.New(hostRewriter{strings.TrimPrefix(up.URL, "http://")}, nil)}
	})
	if d, _ := pullAll(t, r, "hub/alpine:3.20"); d != want {
		t.Fatalf("hub/alpine: %s, want Docker Hub's library/alpine %s", d, want)
	}
}

// TestCacheUpstreamHangs: an upstream that accepts the re-check's HEAD and
// answers nothing delays the pull by RecheckTimeout at most; the cached
// manifest is then served, stale.
func TestCacheUpstreamHangs(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(512, 1, random.WithSource(rand.NewSource(50)))
	want := pushUpstream(t, up, "library/alpine", "3.20", img)
	c := newCache(t, up, "", "", func(c *oci.Cache) { c.RecheckTimeout = 50 * time.Millisecond })
	pullAll(t, c.registry, "hub/library/alpine:3.20")

	up.Hang()
	defer up.Release()
	c.clock.Add(2 * time.Hour)
	resp, body := c.do("GET", "/v2/hub/library/alpine/manifests/3.20", http.Header{"Accept": {mustMediaType(t, img)}}, nil)
	if resp.StatusCode != 200 || berth.DigestOf("", body) != berth.Digest(want.String()) {
		t.Fatalf("manifest while the upstream hangs: %d", resp.StatusCode)
	}
	if w := resp.Header.Get("Warning"); !strings.Contains(w, "upstream_unreachable") || !strings.Contains(w, "timed out") {
		t.Errorf("Warning %q", w)
	}
}

// TestCacheUpstreamSendsOtherBytes: a blob whose bytes from the upstream do
// not match its digest is not stored, and the client it was streamed to
// gets a body short of its Content-Length (its last byte waits for the
// digest to be verified), so that no client takes it for a whole blob, even
// one that does not check digests. Once the upstream sends the right bytes,
// the blob is fetched again, stored and served.
func TestCacheUpstreamSendsOtherBytes(t *testing.T) {
	for _, size := range []int64{512, 3<<20 + 100} { // within one chunk, over several
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			up := upstreamtest.New(t, "", "")
			img, _ := random.Image(size, 1, random.WithSource(rand.NewSource(size)))
			pushUpstream(t, up, "library/big", "1", img)
			layers, _ := img.Layers()
			ld, _ := layers[0].Digest()
			c := newCache(t, up, "", "")
			path := "/v2/hub/library/big/blobs/" + ld.String()

			up.Corrupt(true)
			wantShortBody(t, "a corrupt blob", "http://"+c.host+path)
			if logs := c.logged(); !strings.Contains(logs, "reason=digest_invalid") {
				t.Errorf("no log line with reason digest_invalid:\n%s", logs)
			}

			up.Corrupt(false)
			resp2, body := c.do("GET", path, nil, nil)
			if resp2.StatusCode != 200 || berth.DigestOf("", body) != berth.Digest(ld.String()) {
				t.Fatalf("GET once the upstream is right: %d, %d bytes", resp2.StatusCode, len(body))
			}
			if n := up.BlobGets.Load(); n != 2 {
				t.Errorf("%d blob GETs upstream, want 2: the corrupt bytes were kept", n)
			}
		})
	}
}

// upstreamBlob pushes to up, as repo:1, an image of one uncompressed layer of
// size random bytes, and returns the layer's digest.
func upstreamBlob(t *testing.T, up *upstreamtest.Registry, repo string, size int) berth.Digest {
	t.Helper()
	data := make([]byte, size)
	if _, err := crand.Read(data); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	pushUpstream(t, up, repo, "1", img)
	return berth.DigestOf(berth.SHA256, data)
}

// wantShortBody GETs url and fails unless the answer is a 200 whose body
// ends before its Content-Length.
func wantShortBody(t *testing.T, what, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength <= 0 || !errors.Is(err, io.ErrUnexpectedEOF) || n >= resp.ContentLength {
		t.Fatalf("GET of %s: %d, read %d of %d bytes, then %v; want a body cut short", what, resp.StatusCode, n, resp.ContentLength, err)
	}
}

// TestCacheClientStalls: a client that stops reading the blob being
// fetched for it is dropped after StallTimeout, and the fetch goes on for
// the pull that waits for it, which gets the whole blob from one upstream
// GET.
func TestCacheClientStalls(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/big", 32<<20) // more than the sockets between berth and the client hold
	// Long enough that the pull which reads does not stall on a loaded
	// machine, short enough to cut the one that does not read.
	c := newCache(t, up, "", "", func(c *oci.Cache) { c.StallTimeout = 5 * time.Second })

	conn, err := net.Dial("tcp", c.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(conn, "GET /v2/hub/library/big/blobs/"+d.String()+" HTTP/1.1\r\nHost: berth\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, len("HTTP/1.1 200"))
	if _, err := io.ReadFull(conn, status); err != nil || string(status) != "HTTP/1.1 200" {
		t.Fatalf("the stalling client's answer: %q, %v", status, err)
	}
	// It reads nothing more. The fetch is under way: a second GET waits for it.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+c.host+"/v2/hub/library/big/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the pull that waits for the stalled fetch: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || berth.DigestOf(berth.SHA256, body) != d {
		t.Fatalf("the pull that waits for the stalled fetch: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	if n := up.BlobGets.Load(); n != 1 {
		t.Errorf("%d blob GETs upstream, want 1", n)
	}
}

// TestCacheUpstreamBreaksOff: an upstream that cuts a blob's body short
// leaves nothing stored; the client's body ends short too, and the log says
// upstream_unreachable. The next pull fetches the blob again, whole.
func TestCacheUpstreamBreaksOff(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(3<<20, 1, random.WithSource(rand.NewSource(60)))
	pushUpstream(t, up, "library/big", "1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	c := newCache(t, up, "", "")
	path := "/v2/hub/library/big/blobs/" + ld.String()

	up.BreakOff(2<<20 + 5)
	wantShortBody(t, "a blob the upstream cuts short", "http://"+c.host+path)
	if logs := c.logged(); !strings.Contains(logs, "reason=upstream_unreachable") {
		t.Errorf("no log line with reason upstream_unreachable:\n%s", logs)
	}

	up.BreakOff(0)
	resp2, body := c.do("GET", path, nil, nil)
	if resp2.StatusCode != 200 || berth.DigestOf("", body) != berth.Digest(ld.String()) {
		t.Fatalf("GET once the upstream is whole: %d, %d bytes", resp2.StatusCode, len(body))
	}
	if n := up.BlobGets.Load(); n != 2 {
		t.Errorf("%d blob GETs upstream, want 2", n)
	}
}

// TestCacheStreamsWhileFetching: a first pull's client gets a blob's bytes
// while the upstream is still sending it, not once berth has stored it all:
// with the upstream paused two thirds in (at a multiple of the 1 MiB the
// cache reads at a time), the client has read every byte it sent.
func TestCacheStreamsWhileFetching(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/slow", 12<<20)
	c := newCache(t, up, "", "")
	resume := up.PauseAfter(8 << 20)
	defer resume()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+c.host+"/v2/hub/library/slow/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer while the upstream is paused: %v", err)
	}
	defer resp.Body.Close()
	first := make([]byte, 8<<20)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the client got less than 8 MiB while the upstream, paused at 8 MiB, was still sending: %v", err)
	}
	resume()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || berth.DigestOf(berth.SHA256, append(first, rest...)) != d {
		t.Fatalf("the whole blob: %d, %d bytes, %v", resp.StatusCode, len(first)+len(rest), err)
	}
}

// TestCacheClientGetsBlobBeforeSync: a first pull's client gets the whole
// blob once the blob store has verified its digest, without waiting for
// the store to make it durable (the disk store's fsyncs wait for the file
// system's journal): here the store's Put does not return until the
// client has read the whole body.
func TestCacheClientGetsBlobBeforeSync(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/big", 3<<20+100)
	u, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: "dockerhub", URL: up.URL, Namespace: "hub"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	meta, inner := openStores(t, t.TempDir())
	blobs := &heldPut{blobUploadStore: inner, release: make(chan struct{})}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) {
		h.Cache = &oci.Cache{Upstreams: upstreamList{u}, Client: upstream.New(nil, nil)}
	})
	t.Cleanup(func() { close(blobs.release) }) // before the server stops

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.host+"/v2/hub/library/big/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || berth.DigestOf(berth.SHA256, body) != d {
		t.Fatalf("GET while the blob store's Put has yet to return: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
}

// heldPut is a blob store whose Put returns only once release is closed.
type heldPut struct {
	blobUploadStore
	release chan struct{}
}

func (h *heldPut) Put(ctx context.Context, d berth.Digest, size int64, r io.Reader) (berth.BlobInfo, error) {
	info, err := h.blobUploadStore.Put(ctx, d, size, r)
	<-h.release
	return info, err
}

// firstPulls starts n GETs of blob d of hub/library/big through c while
// the upstream is paused after paused bytes: the first leads the fetch
// (its 200 says the fetch is under way), the others join it. It returns
// their responses, each read up to paused bytes (all the upstream has
// sent), with those bytes.
func firstPulls(t *testing.T, ctx context.Context, c *cacheEnv, d berth.Digest, n int, paused int) ([]*http.Response, [][]byte) {
	t.Helper()
	var resps []*http.Response
	var bodies [][]byte
	for i := range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+c.host+"/v2/hub/library/big/blobs/"+d.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("pull %d got no answer while the upstream was paused: %v", i, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("pull %d: %d", i, resp.StatusCode)
		}
		resps = append(resps, resp)
	}
	for i, resp := range resps {
		b := make([]byte, paused)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			t.Fatalf("pull %d got less than the %d bytes the paused upstream had sent: %v", i, paused, err)
		}
		bodies = append(bodies, b)
	}
	return resps, bodies
}

// TestCacheConcurrentFirstPullsStream: eight concurrent first pulls of
// one uncached blob make one upstream GET, and every one of them, not
// only the one that leads the fetch, receives the bytes as the upstream
// sends them: with the upstream paused a third of the way in, all eight
// have read every byte it sent. (PauseAfter, not Throttle: no clock.)
func TestCacheConcurrentFirstPullsStream(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/big", 12<<20)
	c := newCache(t, up, "", "")
	resume := up.PauseAfter(4 << 20)
	defer resume()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	resps, bodies := firstPulls(t, ctx, c, d, 8, 4<<20)
	resume()
	readRest(t, resps, bodies, d, "")
	if n := up.BlobGets.Load(); n != 1 {
		t.Errorf("eight concurrent first pulls made %d blob GETs upstream, want 1", n)
	}
}

// readRest reads the rest of each pull's body at once, after what bodies
// holds of it, and checks that each is the whole blob d.
func readRest(t *testing.T, resps []*http.Response, bodies [][]byte, d berth.Digest, what string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(resps))
	for i, resp := range resps {
		wg.Go(func() {
			rest, err := io.ReadAll(resp.Body)
			bodies[i] = append(bodies[i], rest...)
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range resps {
		if errs[i] != nil || berth.DigestOf(berth.SHA256, bodies[i]) != d {
			t.Errorf("pull %d%s: %d bytes, %v; want the blob", i, what, len(bodies[i]), errs[i])
		}
	}
}

// TestCacheConcurrentFirstPullsCorrupt: when the upstream's bytes do not
// match the digest, every pull that followed the fetch has its body cut
// short, as the one that led it does: none gets a whole body unverified.
// The failed fetch counts one upstream error, not one per pull that
// shared it.
func TestCacheConcurrentFirstPullsCorrupt(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/big", 6<<20)
	m := &upstreamErrors{n: map[berth.Code]int{}}
	c := newCache(t, up, "", "", func(c *oci.Cache) { c.Meter = m })
	up.Corrupt(true)
	resume := up.PauseAfter(2 << 20)
	defer resume()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	resps, _ := firstPulls(t, ctx, c, d, 4, 2<<20)
	resume()
	for i, resp := range resps {
		n, err := io.Copy(io.Discard, resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || 2<<20+n >= resp.ContentLength {
			t.Errorf("pull %d of a corrupt blob: %d more bytes, then %v; want a body cut short", i, n, err)
		}
	}
	if logs := c.logged(); !strings.Contains(logs, "reason=digest_invalid") {
		t.Errorf("no log line with reason digest_invalid:\n%s", logs)
	}
	// The fetch is counted when it lands, which may come a moment after
	// the bodies were cut short.
	counted := map[berth.Code]int{}
	for deadline := time.Now().Add(5 * time.Second); counted[berth.CodeDigestInvalid] == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		maps.Copy(counted, m.take())
	}
	if counted[berth.CodeDigestInvalid] != 1 || len(counted) != 1 {
		t.Errorf("one failed fetch shared by 4 pulls counted %v, want one digest_invalid", counted)
	}
}

// TestCacheFollowerStalls: a pull that joined a fetch and stops reading
// slows neither the fetch nor the other pulls: with StallTimeout far
// beyond the test's own bound, the leading pull and another follower get
// the whole blob while it still reads nothing. When it reads again, far
// behind what the fetch keeps in memory for its followers, it gets the
// rest from the store: the whole blob too.
func TestCacheFollowerStalls(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	d := upstreamBlob(t, up, "library/big", 32<<20) // more than the sockets between berth and the client hold
	c := newCache(t, up, "", "", func(c *oci.Cache) { c.StallTimeout = time.Hour })
	resume := up.PauseAfter(1 << 20)
	defer resume()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	resps, bodies := firstPulls(t, ctx, c, d, 1, 1<<20)
	conn, err := net.Dial("tcp", c.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10) // fixed: the sockets hold far less than the blob
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET /v2/hub/library/big/blobs/"+d.String()+" HTTP/1.1\r\nHost: berth\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, len("HTTP/1.1 200"))
	if _, err := io.ReadFull(conn, status); err != nil || string(status) != "HTTP/1.1 200" {
		t.Fatalf("the stalling follower's answer: %q, %v", status, err)
	}
	more, more1 := firstPulls(t, ctx, c, d, 1, 1<<20)
	resps, bodies = append(resps, more...), append(bodies, more1...)
	resume()
	readRest(t, resps, bodies, d, " beside a stalled one")
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	stalled, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(status), conn)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(stalled.Body)
	if err != nil || berth.DigestOf(berth.SHA256, body) != d {
		t.Errorf("the stalled follower, reading again: %d bytes, %v; want the blob", len(body), err)
	}
	if n := up.BlobGets.Load(); n != 1 {
		t.Errorf("%d blob GETs upstream, want 1", n)
	}
}

// upstreamErrors counts the upstream failures a cache reports, by code.
type upstreamErrors struct {
	mu sync.Mutex
	n  map[berth.Code]int
}

func (m *upstreamErrors) CacheHit(string)     {}
func (m *upstreamErrors) CacheMiss(string)    {}
func (m *upstreamErrors) UpstreamBytes(int64) {}
func (m *upstreamErrors) UpstreamError(code berth.Code) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[code]++
}

func (m *upstreamErrors) take() map[berth.Code]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.n
	m.n = map[berth.Code]int{}
	return n
}

// TestCacheCountsAnUpstreamFailureOnce: a failed fetch of a manifest or a
// blob, and a failed re-check of a cached tag, each count one upstream
// error, not one where the fetch failed and another where its caller
// answers. (TestCacheConcurrentFirstPullsCorrupt: one failed fetch shared
// by several pulls counts once too.)
func TestCacheCountsAnUpstreamFailureOnce(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(256, 1)
	pushUpstream(t, up, "library/alpine", "3.20", img)
	m := &upstreamErrors{n: map[berth.Code]int{}}
	c := newCache(t, up, "", "", func(c *oci.Cache) { c.Meter = m })
	pullAll(t, c.registry, "hub/library/alpine:3.20")
	never := upstreamBlob(t, up, "library/other", 1000) // not in the cache: the GET fetches it

	up.RateLimit("30")
	defer up.RateLimit("")
	resp, body := c.do("GET", "/v2/hub/library/other/manifests/1", nil, nil)
	expectError(t, resp, body, http.StatusTooManyRequests, berth.CodeUpstreamRateLimited)
	if got := m.take(); got[berth.CodeUpstreamRateLimited] != 1 || len(got) != 1 {
		t.Errorf("a failed manifest fetch counted %v, want one upstream_rate_limited", got)
	}
	resp, body = c.do("GET", "/v2/hub/library/other/blobs/"+never.String(), nil, nil)
	expectError(t, resp, body, http.StatusTooManyRequests, berth.CodeUpstreamRateLimited)
	if got := m.take(); got[berth.CodeUpstreamRateLimited] != 1 || len(got) != 1 {
		t.Errorf("a failed blob fetch counted %v, want one upstream_rate_limited", got)
	}
	c.clock.Add(2 * time.Hour) // past the TTL: the tag is re-checked, and that fails
	if resp, _ := c.do("GET", "/v2/hub/library/alpine/manifests/3.20", http.Header{"Accept": {mustMediaType(t, img)}}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the stale tag: %d", resp.StatusCode)
	}
	if got := m.take(); got[berth.CodeUpstreamRateLimited] != 1 || len(got) != 1 {
		t.Errorf("a failed re-check counted %v, want one upstream_rate_limited", got)
	}
}
