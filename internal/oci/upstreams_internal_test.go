package oci

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/testclock"
)

// countingFinder returns its list as it is at each call, and counts them.
type countingFinder struct {
	list  []berth.Upstream
	calls int
}

func (f *countingFinder) FindUpstreams(context.Context) ([]berth.Upstream, error) {
	f.calls++
	return append([]berth.Upstream(nil), f.list...), nil
}

// TestUpstreamsKeptUntilInvalidated checks that requests share one read of
// the upstreams for UpstreamsTTL, that Invalidate makes the next request
// see a change at once, and that without it a change is seen once the TTL
// has passed.
func TestUpstreamsKeptUntilInvalidated(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	f := &countingFinder{list: []berth.Upstream{{Name: "hub", Namespace: "hub"}}}
	c := &Cache{Upstreams: f, Now: clock.Now}
	route := func(repo string) string {
		t.Helper()
		u, err := c.upstreamFor(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		if u == nil {
			return ""
		}
		return u.Name
	}
	for range 3 {
		if got := route("hub/library/alpine"); got != "hub" {
			t.Fatalf("hub/library/alpine routed to %q", got)
		}
	}
	if f.calls != 1 {
		t.Fatalf("%d reads of the upstreams for three requests within the TTL", f.calls)
	}
	f.list = append(f.list, berth.Upstream{Name: "ghcr", Namespace: "ghcr"})
	if got := route("ghcr/org/app"); got != "" {
		t.Fatalf("a change seen before Invalidate or the TTL: routed to %q", got)
	}
	c.Invalidate()
	if got := route("ghcr/org/app"); got != "ghcr" {
		t.Fatalf("after Invalidate, ghcr/org/app routed to %q", got)
	}
	f.list = f.list[:1]
	clock.Advance(time.Second - time.Nanosecond) // the default TTL, all but its end
	if got := route("ghcr/org/app"); got != "ghcr" {
		t.Fatalf("the list was read again before its TTL passed: routed to %q", got)
	}
	clock.Advance(time.Nanosecond)
	if got := route("ghcr/org/app"); got != "" {
		t.Fatalf("a deleted upstream still routed to once the TTL passed: %q", got)
	}
	if f.calls != 3 {
		t.Fatalf("%d reads, want 3", f.calls)
	}
}

// A held manifest pushed out by the bound takes its tags with it, and they
// are no longer known current: the next pull asks the upstream, instead of
// serving an older stored manifest as fresh. A released one leaves the
// order, so that holding it again does not count it twice.
func TestHeldManifestsForgetTheirTags(t *testing.T) {
	now := time.Now()
	c := &Cache{MaxPending: 1}
	first := &berth.Manifest{Repository: "hub/library/alpine", Digest: berth.DigestOf(berth.SHA256, []byte("first"))}
	c.hold(first, "3.20")
	c.markChecked(first.Repository, "3.20", now, time.Hour)
	c.release("hub/other", berth.DigestOf(berth.SHA256, []byte("none")), "")
	c.hold(&berth.Manifest{Repository: "hub/library/busybox", Digest: berth.DigestOf(berth.SHA256, []byte("second"))}, "1")
	if _, ok := c.ptags["hub/library/alpine:3.20"]; ok || c.fresh(first.Repository, "3.20", now) {
		t.Fatalf("the evicted manifest's tag is still held (%v) or fresh", c.ptags)
	}
	second := &berth.Manifest{Repository: "hub/library/busybox", Digest: berth.DigestOf(berth.SHA256, []byte("second"))}
	c.release(second.Repository, second.Digest, "1")
	c.hold(second, "1")
	if len(c.order) != 1 {
		t.Fatalf("order %v after a release and a new hold, want one entry", c.order)
	}
}

// The tags known current are forgotten once their TTL has passed, and are
// never more than MaxChecked: every tag ever pulled is not kept forever.
func TestCheckedTagsBounded(t *testing.T) {
	clock := testclock.New(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	c := &Cache{MaxChecked: 2000}
	for i := range 1500 {
		c.markChecked("hub/library/app", strconv.Itoa(i), clock.Now(), time.Minute)
	}
	if !c.fresh("hub/library/app", "0", clock.Now()) {
		t.Fatal("a tag checked within its TTL is not fresh")
	}
	clock.Advance(time.Minute)
	if c.fresh("hub/library/app", "0", clock.Now()) {
		t.Fatal("a tag is fresh once its TTL has passed")
	}
	for i := range 1500 {
		c.markChecked("hub/library/other", strconv.Itoa(i), clock.Now(), time.Hour)
	}
	if n := len(c.checked); n > 1500 {
		t.Fatalf("%d tags kept; the 1500 whose TTL passed were not dropped", n)
	}
	for i := range 10_000 {
		c.markChecked("hub/library/more", strconv.Itoa(i), clock.Now().Add(time.Duration(i)), time.Hour)
	}
	if n := len(c.checked); n > c.MaxChecked {
		t.Fatalf("%d tags kept, past MaxChecked %d", n, c.MaxChecked)
	}
	if !c.fresh("hub/library/more", "9999", clock.Now()) {
		t.Fatal("the tag checked last was dropped before older ones")
	}
	c.markChecked("hub/library/more", "9999", clock.Now(), 0)
	if c.fresh("hub/library/more", "9999", clock.Now()) {
		t.Fatal("a tag checked with no TTL is fresh")
	}
}

// The manifests held are bounded by their bytes as well as their count,
// the oldest forgotten first.
func TestHeldManifestsBoundedByBytes(t *testing.T) {
	c := &Cache{MaxPending: 100, MaxPendingBytes: 10 << 20}
	var ms []*berth.Manifest
	for i := range 4 {
		content := make([]byte, 4<<20)
		content[0] = byte(i)
		m := &berth.Manifest{Repository: "hub/library/app", Digest: berth.DigestOf(berth.SHA256, content), Content: content}
		ms = append(ms, m)
		c.hold(m, strconv.Itoa(i))
	}
	if len(c.pending) != 2 || c.pbytes != 8<<20 {
		t.Fatalf("%d manifests of %d bytes held, want the newest 2 of 8 MiB", len(c.pending), c.pbytes)
	}
	for i, m := range ms {
		_, held := c.pending[m.Repository+"@"+m.Digest.String()]
		if held != (i >= 2) {
			t.Fatalf("manifest %d held: %v; the oldest go first", i, held)
		}
	}
	c.release(ms[3].Repository, ms[3].Digest, "3")
	c.release(ms[3].Repository, ms[3].Digest, "3")
	c.hold(ms[2], "2")
	if c.pbytes != 4<<20 {
		t.Fatalf("%d bytes counted after a release and a second hold, want 4 MiB", c.pbytes)
	}
}
