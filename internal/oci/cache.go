package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/upstream"
)

// UpstreamFinder lists the upstreams whose cache namespaces the registry
// serves, each with its credential readable (unsealed).
type UpstreamFinder interface {
	FindUpstreams(ctx context.Context) ([]berth.Upstream, error)
}

// CacheMeter counts what the pull-through cache does; metrics.Metrics
// implements it.
type CacheMeter interface {
	// CacheHit counts a manifest or blob ("manifest", "blob") served from
	// what berth holds; CacheMiss one fetched from its upstream.
	CacheHit(kind string)
	CacheMiss(kind string)
	// UpstreamError counts an upstream failure by its reason code.
	UpstreamError(code berth.Code)
	// UpstreamBytes counts blob bytes fetched from upstreams.
	UpstreamBytes(n int64)
}

// Cache is the pull-through cache: a repository in an upstream's cache
// namespace (hub/library/alpine) is read from what berth holds, or fetched
// from the upstream, stored and served. A blob fetched is streamed to the
// client while it is stored; concurrent pulls of the same content fetch it
// once, and those of a blob get its bytes as they arrive too (followBlob).
// A tag is re-checked with a HEAD once its upstream's TagTTL has passed
// since it was last known current; when the upstream fails then,
// the cached manifest is served with a Warning header. Digests are never
// re-checked.
//
// A fetched image manifest is stored once every blob it references is in
// the repository (as for a push); until its client has pulled those
// through the cache, it is held in memory and served from there. An index
// is stored at once, through PutCachedManifest: its clients pull one
// platform's manifest of it each, seldom all, and an index held in memory
// would be lost at a restart or pushed out by MaxPending, leaving its tag
// to the upstream again (its rate limit; its outages). A child it names
// that was never pulled is fetched when first asked for, by digest.
type Cache struct {
	Upstreams UpstreamFinder
	Client    *upstream.Client
	// Meter, when set, counts hits, misses, upstream errors and bytes.
	Meter CacheMeter
	// RecheckTimeout bounds the HEAD that re-checks a tag after its TTL
	// (10 s when zero): past it the cached manifest is served, stale, so a
	// hung upstream slows a pull by no more than that.
	RecheckTimeout time.Duration
	// StallTimeout bounds how long the client a fetched blob is streamed
	// to may take to accept one chunk of it (30 s when zero): past it, the
	// client's body is cut short and the fetch goes on without it, so that
	// a client that stops reading does not hold up the others waiting for
	// the blob. (A request that joined the fetch holds up no one; it is
	// dropped past StallTimeout all the same.)
	StallTimeout time.Duration
	// MaxPending bounds the image manifests held in memory awaiting their blobs
	// (1000 when zero), and MaxPendingBytes their content (64 MiB when
	// zero): past either the oldest are forgotten, and fetched again when
	// next asked for.
	MaxPending      int
	MaxPendingBytes int64
	// MaxChecked bounds the tags remembered as known current (100 000 when
	// zero). A tag is forgotten once its TagTTL has passed (it would be
	// re-checked anyway); past the bound, those closest to that go first,
	// and are re-checked with a HEAD at their next pull.
	MaxChecked int
	// UpstreamsTTL bounds how long the list of upstreams read from
	// Upstreams serves every request before it is read again (a second,
	// oauth.StateTTL, when zero): the bound for a change made by another
	// replica whose notice was lost. Invalidate drops the list at once.
	UpstreamsTTL time.Duration
	// Now, when set, is the clock of UpstreamsTTL (time.Now otherwise).
	Now func() time.Time

	upsMu  sync.Mutex
	ups    []berth.Upstream // read-only once kept
	upsAt  time.Time        // when ups was read; zero: none kept
	upsGen uint64           // counts Invalidate calls

	mu      sync.Mutex
	checked map[string]time.Time       // repo:tag → until when it is known current
	sweepAt int                        // len(checked) past which it is pruned
	pending map[string]*berth.Manifest // repo@digest → fetched, not yet stored
	pbytes  int64                      // the content of pending, in bytes
	ptags   map[string]berth.Digest    // repo:tag → pending digest
	order   []string                   // pending keys, oldest first
	flights map[string]*flight
}

// flight is one fetch from an upstream that concurrent requests share.
type flight struct {
	done chan struct{}
	err  error
	// A blob's fetch that streams the blob to its client streams it to the
	// requests that join it too (see blobStream): stream is set, once,
	// before started is closed; started is closed without one when the
	// fetch ends first.
	started   chan struct{}
	startOnce sync.Once
	stream    *blobStream
}

// start sets the flight's stream, or none, at most once.
func (f *flight) start(s *blobStream) {
	f.startOnce.Do(func() {
		f.stream = s
		close(f.started)
	})
}

// errFetchAborted ends a flight whose leader ended abnormally (a panic).
var errFetchAborted = errors.New("the shared upstream fetch ended abnormally")

// upstreamFor returns the upstream whose cache namespace holds repo.
func (c *Cache) upstreamFor(ctx context.Context, repo string) (*berth.Upstream, error) {
	ups, err := c.upstreams(ctx)
	if err != nil {
		return nil, err
	}
	u, ok := berth.UpstreamFor(ups, repo)
	if !ok {
		return nil, nil // most requests: no allocation
	}
	found := new(berth.Upstream)
	*found = u
	return found, nil
}

// ReadOnly reports whether repo lies in the cache namespace of an upstream,
// which only the cache fills, or the error that kept it from telling.
func (c *Cache) ReadOnly(ctx context.Context, repo string) (bool, error) {
	u, err := c.upstreamFor(ctx, repo)
	return u != nil, err
}

// upstreams returns the upstreams, read from Upstreams at most once per
// UpstreamsTTL: every /v2/ request asks, and they change seldom. The slice
// is shared: never write to it.
func (c *Cache) upstreams(ctx context.Context) ([]berth.Upstream, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ttl := c.UpstreamsTTL
	if ttl <= 0 {
		ttl = time.Second
	}
	t := now()
	c.upsMu.Lock()
	if !c.upsAt.IsZero() && !t.Before(c.upsAt) && t.Sub(c.upsAt) < ttl {
		ups := c.ups
		c.upsMu.Unlock()
		return ups, nil
	}
	gen := c.upsGen
	c.upsMu.Unlock()
	ups, err := c.Upstreams.FindUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	c.upsMu.Lock()
	if c.upsGen == gen { // no Invalidate since the read began
		c.ups, c.upsAt = ups, t
	}
	c.upsMu.Unlock()
	return ups, nil
}

// Invalidate drops the upstreams kept, so that the next request reads them
// again: call it when an upstream was created or deleted.
func (c *Cache) Invalidate() {
	c.upsMu.Lock()
	defer c.upsMu.Unlock()
	c.upsGen++
	c.ups, c.upsAt = nil, time.Time{}
}

// join runs fn as the one fetch of key, or waits for the one running; led
// reports whether this call ran it.
func (c *Cache) join(ctx context.Context, key string, fn func() error) (led bool, err error) {
	f, led := c.board(key)
	if !led {
		select {
		case <-f.done:
			return false, f.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return true, c.lead(key, f, fn)
}

// lead runs fn as flight f of key, which this call boarded first, and
// lands it with fn's outcome (errFetchAborted when fn panics).
func (c *Cache) lead(key string, f *flight, fn func() error) (err error) {
	err = errFetchAborted
	defer func() { c.land(key, f, err) }()
	return fn()
}

// board returns the flight of key, and whether this call started it; the
// call that did must land it.
func (c *Cache) board(key string) (f *flight, led bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flights == nil {
		c.flights = map[string]*flight{}
	}
	if f, ok := c.flights[key]; ok {
		return f, false
	}
	f = &flight{done: make(chan struct{}), started: make(chan struct{})}
	c.flights[key] = f
	return f, true
}

// land ends flight f of key with err.
func (c *Cache) land(key string, f *flight, err error) {
	c.mu.Lock()
	delete(c.flights, key)
	c.mu.Unlock()
	c.failed(err) // once per fetch, however many requests shared it
	f.err = err
	f.start(nil)
	close(f.done)
}

func (c *Cache) hit(kind string) {
	if c.Meter != nil {
		c.Meter.CacheHit(kind)
	}
}

func (c *Cache) miss(kind string) {
	if c.Meter != nil {
		c.Meter.CacheMiss(kind)
	}
}

// failed counts an upstream failure and returns err.
func (c *Cache) failed(err error) error {
	if e := berth.AsError(err); c.Meter != nil && e != nil {
		switch e.Code {
		case berth.CodeUpstreamUnreachable, berth.CodeUpstreamAuthFailed, berth.CodeUpstreamRateLimited, berth.CodeDigestInvalid:
			c.Meter.UpstreamError(e.Code)
		}
	}
	return err
}

// cachedManifest serves a manifest of a cache repository (GET or HEAD).
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
func (h *Handler) cachedManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	c, u, ctx := h.Cache, *rt.Upstream, r.Context()
	remote, _ := u.RemoteRepository(rt.Repo)
	if berth.IsDigestReference(rt.Ref) {
		m, err := c.local(ctx, h.Meta, rt.Repo, rt.Ref)
		if err == nil {
			c.hit("manifest")
			return h.writeManifest(w, r, rt, m)
		}
		if !berth.IsCode(err, berth.CodeManifestUnknown) {
			return err
		}
		c.miss("manifest")
		m, err = h.fetchManifest(ctx, u, rt.Repo, remote, rt.Ref, "")
		if err != nil {
			return err // counted by the fetch
		}
		return h.writeManifest(w, r, rt, m)
	}
	tag := rt.Ref
	m, err := c.local(ctx, h.Meta, rt.Repo, tag)
	if err != nil && !berth.IsCode(err, berth.CodeManifestUnknown) {
		return err
	}
	if err != nil { // not cached
		c.miss("manifest")
		m, err = h.fetchManifest(ctx, u, rt.Repo, remote, tag, tag)
		if err != nil {
			return err // counted by the fetch
		}
		return h.writeManifest(w, r, rt, m)
	}
	if c.fresh(rt.Repo, tag, h.Now()) {
		c.hit("manifest")
		return h.writeManifest(w, r, rt, m)
	}
	// The TTL has passed: a HEAD says whether the tag moved.
	recheck := c.RecheckTimeout
	if recheck <= 0 {
		recheck = 10 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, recheck)
	desc, err := h.Cache.Client.HeadManifest(hctx, u, remote, tag)
	cancel()
	if err == nil && desc.Digest == m.Digest {
		c.markChecked(rt.Repo, tag, h.Now(), u.TagTTL)
		c.hit("manifest")
		return h.writeManifest(w, r, rt, m)
	}
	if err != nil {
		c.failed(err) // a fetch's failure is counted by the fetch
	} else {
		c.miss("manifest")
		var moved *berth.Manifest
		if moved, err = h.fetchManifest(ctx, u, rt.Repo, remote, desc.Digest.String(), tag); err == nil {
			return h.writeManifest(w, r, rt, moved)
		}
	}
	// The upstream failed: serve what berth holds, and say so.
	c.hit("manifest")
	h.Logger.WarnContext(ctx, "serving a cached tag that could not be re-checked with its upstream",
		slog.String("repository", rt.Repo), slog.String("tag", tag), slog.String("upstream", u.Name),
		slog.String("reason", string(berth.ErrorCode(err))), errAttr(err))
	w.Header().Set("Warning", staleWarning(u, err))
	return h.writeManifest(w, r, rt, m)
}

// staleWarning is the Warning header of a response served from the cache
// because the upstream failed (RFC 9111 section 5.5, code 110).
func staleWarning(u berth.Upstream, err error) string {
	return "110 berth " + strconv.Quote(fmt.Sprintf("Response is stale: %s upstream %s (%s) failed the re-check: %s", berth.ErrorCode(err), u.Name, u.Host(), messageOf(err)))
}

// errAttr is err for the log: a refusal's message, or berth's own failure
// (the store's) whole.
func errAttr(err error) slog.Attr {
	if e := berth.AsError(err); e != nil {
		return slog.String("err", e.Message)
	}
	return slog.Any("err", err)
}

func messageOf(err error) string {
	if e := berth.AsError(err); e != nil {
		return e.Message
	}
	return "internal error"
}

// local returns the manifest ref names in repo: fetched and held until
// its blobs are in the repository (newer than a stored tag it moved), or
// stored.
func (c *Cache) local(ctx context.Context, meta berth.ManifestStore, repo, ref string) (*berth.Manifest, error) {
	c.mu.Lock()
	key := repo + "@" + ref
	if !berth.IsDigestReference(ref) {
		key = ""
		if d, ok := c.ptags[repo+":"+ref]; ok {
			key = repo + "@" + d.String()
		}
	}
	p, ok := c.pending[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	return meta.FindManifest(ctx, repo, ref)
}

// fresh reports whether repo:tag is still known current at now.
func (c *Cache) fresh(repo, tag string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.checked[repo+":"+tag]
	return ok && now.Before(until)
}

// markChecked notes that repo:tag was current at now, and is taken to be
// for ttl, its upstream's TagTTL (a TagTTL changed applies from the next
// check). Nothing is kept when ttl is not positive: such a tag is
// re-checked at every pull.
func (c *Cache) markChecked(repo, tag string, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := repo + ":" + tag
	if ttl <= 0 {
		delete(c.checked, key)
		return
	}
	if c.checked == nil {
		c.checked = map[string]time.Time{}
	}
	c.checked[key] = now.Add(ttl)
	if len(c.checked) > c.sweepAt {
		c.pruneChecked(now)
	}
}

// pruneChecked drops the tags whose TTL has passed at now and, past
// MaxChecked, those closest to it, down to three quarters of MaxChecked.
// It runs once checked has doubled since the last run (or reached
// MaxChecked), so that its cost, a pass over them all, is spread over the
// tags added in between. c.mu is held.
func (c *Cache) pruneChecked(now time.Time) {
	limit := c.MaxChecked
	if limit <= 0 {
		limit = 100_000
	}
	for k, until := range c.checked {
		if !now.Before(until) {
			delete(c.checked, k)
		}
	}
	if len(c.checked) > limit {
		keys := make([]string, 0, len(c.checked))
		for k := range c.checked {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return c.checked[a].Compare(c.checked[b]) })
		for _, k := range keys[:len(keys)-limit*3/4] {
			delete(c.checked, k)
		}
	}
	c.sweepAt = min(max(2*len(c.checked), 1024), limit)
}

// fetchManifest fetches ref of the upstream's remote repository, once for
// concurrent requests, and keeps it in repo under tag when tag is set.
func (h *Handler) fetchManifest(ctx context.Context, u berth.Upstream, repo, remote, ref, tag string) (*berth.Manifest, error) {
	c := h.Cache
	var m *berth.Manifest
	_, err := c.join(ctx, "manifest "+repo+"@"+ref, func() error {
		// The fetch is shared: the client that started it hanging up
		// must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		// A fetch that ended between the caller's look and this one
		// leaves nothing to fetch.
		if tag == "" || tag == ref {
			if _, err := c.local(ctx, h.Meta, repo, ref); err == nil {
				return nil
			}
		}
		got, err := c.Client.GetManifest(ctx, u, remote, ref)
		if err != nil {
			return err
		}
		m, _, err = parseManifest(got.MediaType, got.Content)
		if err != nil && got.MediaType != "" {
			m, _, err = parseManifest("", got.Content) // some registries label manifests loosely
		}
		if err != nil {
			return err
		}
		m.Repository, m.Digest, m.Created = repo, got.Digest, h.Now()
		return h.keepManifest(ctx, m, tag, u.TagTTL)
	})
	if err != nil {
		return nil, err
	}
	if m == nil { // another request fetched it
		return c.local(ctx, h.Meta, repo, ref)
	}
	return m, nil
}

// keepManifest stores m under tag, or, while a blob it references is not
// yet in the repository, holds it until it is. The manifests m references
// (an index's children) need not be there: see Cache.
func (h *Handler) keepManifest(ctx context.Context, m *berth.Manifest, tag string, ttl time.Duration) error {
	c := h.Cache
	err := h.Meta.PutCachedManifest(ctx, m, tag)
	if berth.IsCode(err, berth.CodeManifestBlobUnknown) {
		c.hold(m, tag)
		err = nil
	} else if err == nil {
		c.release(m.Repository, m.Digest, tag)
		h.storePending(ctx, m.Repository)
	}
	if err == nil && tag != "" {
		c.markChecked(m.Repository, tag, h.Now(), ttl)
	}
	return err
}

// hold keeps m in memory, under tag too when set.
func (c *Cache) hold(m *berth.Manifest, tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending, c.ptags = map[string]*berth.Manifest{}, map[string]berth.Digest{}
	}
	key := m.Repository + "@" + m.Digest.String()
	if old, ok := c.pending[key]; ok {
		c.pbytes -= old.Size()
	} else {
		c.order = append(c.order, key)
	}
	c.pending[key] = m
	c.pbytes += m.Size()
	if tag != "" {
		c.ptags[m.Repository+":"+tag] = m.Digest
	}
	limit, maxBytes := c.MaxPending, c.MaxPendingBytes
	if limit <= 0 {
		limit = 1000
	}
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	for len(c.order) > limit || (len(c.order) > 0 && c.pbytes > maxBytes) {
		old := c.order[0]
		c.order = c.order[1:]
		c.forget(old)
	}
}

// forget drops the held manifest of key (REPO@DIGEST) and the tags that
// named it, which are then no longer known current: the next pull of such
// a tag asks the upstream again rather than taking an older stored one.
// c.mu is held.
func (c *Cache) forget(key string) {
	m, ok := c.pending[key]
	if !ok {
		return
	}
	delete(c.pending, key)
	c.pbytes -= m.Size()
	for k, d := range c.ptags {
		if repo, _, ok := cutTagKey(k); ok && repo == m.Repository && d == m.Digest {
			delete(c.ptags, k)
			delete(c.checked, k)
		}
	}
}

// release forgets d of repo (now stored) and the pending tag, when set.
func (c *Cache) release(repo string, d berth.Digest, tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := repo + "@" + d.String()
	if m, ok := c.pending[key]; ok {
		c.pbytes -= m.Size()
		delete(c.pending, key)
	}
	c.order = slices.DeleteFunc(c.order, func(k string) bool { return k == key })
	if tag != "" {
		delete(c.ptags, repo+":"+tag)
	}
}

// storePending stores the manifests of repo held in memory whose blobs
// are all in the repository now. One pass does: what is held waits for
// blobs only, never for another manifest held.
func (h *Handler) storePending(ctx context.Context, repo string) {
	c := h.Cache
	c.mu.Lock()
	var ms []*berth.Manifest
	tags := map[berth.Digest][]string{}
	for _, m := range c.pending {
		if m.Repository == repo {
			ms = append(ms, m)
		}
	}
	for k, d := range c.ptags {
		if r, tag, ok := cutTagKey(k); ok && r == repo {
			tags[d] = append(tags[d], tag)
		}
	}
	c.mu.Unlock()
	for _, m := range ms {
		ts := tags[m.Digest]
		if len(ts) == 0 {
			ts = []string{""}
		}
		stored := true
		for _, tag := range ts {
			if err := h.Meta.PutCachedManifest(ctx, m, tag); err != nil {
				if !berth.IsCode(err, berth.CodeManifestBlobUnknown) {
					h.Logger.ErrorContext(ctx, "store a cached manifest", slog.String("repository", repo), slog.String("digest", m.Digest.String()), slog.Any("err", err))
				}
				stored = false
				break
			}
		}
		if stored {
			for _, tag := range ts {
				c.release(repo, m.Digest, tag)
			}
		}
	}
}

// cutTagKey splits "repo:tag".
func cutTagKey(k string) (repo, tag string, ok bool) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == ':' {
			return k[:i], k[i+1:], true
		}
	}
	return "", "", false
}

// cachedBlob serves a blob of a cache repository that the repository does
// not hold yet: HEAD asks the upstream; GET fetches it, streaming it to the
// client while it is stored and verified, unless another request is
// fetching it already, which it follows (followBlob).
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
func (h *Handler) cachedBlob(w http.ResponseWriter, r *http.Request, rt route, d berth.Digest) error {
	c, u, ctx := h.Cache, *rt.Upstream, r.Context()
	remote, _ := u.RemoteRepository(rt.Repo)
	c.miss("blob")
	// Bytes berth holds already (fetched through another repository) are
	// linked once the upstream confirms this repository has them too.
	if _, err := h.Blobs.Stat(ctx, d); err == nil {
		if _, err := c.Client.HeadBlob(ctx, u, remote, d); err != nil {
			return c.failed(err)
		}
		if err := h.linkFetched(ctx, rt.Repo, d); err != nil {
			return err
		}
		return h.getBlob(w, r, route{Repo: rt.Repo, Kind: kindBlob, Ref: rt.Ref})
	}
	if r.Method == http.MethodHead {
		size, err := c.Client.HeadBlob(ctx, u, remote, d)
		if err != nil {
			return c.failed(err)
		}
		setBlobHeaders(w.Header(), d, size)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	key := "blob " + rt.Repo + "@" + d.String()
	f, led := c.board(key)
	if !led {
		return h.followBlob(w, r, rt, d, f)
	}
	var sent bool
	err := c.lead(key, f, func() (err error) {
		if _, err := h.Meta.FindBlobLink(ctx, rt.Repo, d); err == nil {
			return nil // a fetch ended between the caller's look and this one
		}
		var out io.Writer
		if r.Header.Get("Range") == "" {
			out = w
		}
		sent, err = h.fetchBlob(ctx, w, out, f, u, rt.Repo, remote, d)
		return err
	})
	if err != nil {
		if sent {
			// The status is sent: a broken body is all that is left to say.
			h.Logger.ErrorContext(ctx, "a blob streamed from its upstream failed midway", slog.String("repository", rt.Repo),
				slog.String("digest", d.String()), slog.String("upstream", u.Name), slog.String("reason", string(berth.ErrorCode(err))), errAttr(err))
			return cutShort(w)
		}
		return err // counted by land
	}
	if sent {
		return nil
	}
	return h.getBlob(w, r, route{Repo: rt.Repo, Kind: kindBlob, Ref: rt.Ref})
}

// followBlob serves blob d to a GET that joined flight f, the fetch of d
// another request leads. When that fetch streams the blob to its own
// client and this request arrived before the fetch's first bytes left the
// followers' window (blobStream), it streams the same bytes as they are
// read from the upstream, and the last one once the digest is verified;
// otherwise (a Range request, a late one, a fetch not streamed) it waits
// for the fetch to end, then serves the blob from the store, or the
// fetch's refusal. A follower that falls behind the window waits for the
// fetch to end too, then sends the rest from the store; one whose fetch
// fails has its body cut short.
func (h *Handler) followBlob(w http.ResponseWriter, r *http.Request, rt route, d berth.Digest, f *flight) error {
	ctx := r.Context()
	select {
	case <-f.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s := f.stream; s != nil && r.Header.Get("Range") == "" && s.subscribe() {
		return h.streamFollowed(w, r, rt, d, f, s)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.err != nil {
		return f.err // counted by the fetch's leader
	}
	return h.getBlob(w, r, route{Repo: rt.Repo, Kind: kindBlob, Ref: rt.Ref})
}

// streamFollowed writes the blob of stream s to a follower of flight f,
// which s.subscribe admitted: see followBlob. Each write has StallTimeout;
// a follower that stalls past it only has its own body cut short, since
// the bytes it has yet to send are copies it alone still holds.
func (h *Handler) streamFollowed(w http.ResponseWriter, r *http.Request, rt route, d berth.Digest, f *flight, s *blobStream) error {
	ctx := r.Context()
	subscribed := true
	defer func() {
		if subscribed {
			s.leave()
		}
	}()
	setBlobHeaders(w.Header(), d, s.size)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sw := stallWriter{w: w, rc: rc, stall: h.Cache.stallTimeout()}
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }() // the connection may serve more requests
	// n counts the bytes written.
	var n int64
	defer func() {
		if h.Meter != nil {
			h.Meter.BlobBytesRead(n)
		}
	}()
	cut := func() error { return cutShort(w) }
	for i := 0; ; i++ {
		p, err := s.next(ctx, i)
		if err == io.EOF {
			break
		}
		if err == errBehind {
			s.leave()
			subscribed = false
			return h.sendRest(sw, r, rt, d, f, &n, cut)
		}
		if err != nil { // the fetch failed (the leader logs it), or the client left
			return cut()
		}
		m, err := sw.Write(p)
		n += int64(m)
		if err != nil { // hung up or stalled: its body ends short
			return nil
		}
	}
	sw.flush()
	return nil
}

// cutShort ends a blob's body, its status sent, before its end: a body
// short of its Content-Length closes the connection; without one, the
// connection is cut so that the client does not take the body for a whole
// one.
func cutShort(w http.ResponseWriter) error {
	if w.Header().Get("Content-Length") == "" {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// stallWriter writes to w giving each write stall to complete, as the
// streamed part of a follower's body had: the deadline of the last write
// before a wait must not cut the writes after it. It hides the response's
// ReadFrom, so the part of a follower's body sent from the store goes out
// through copies rather than sendfile: followers are few, and the deadline
// per write is what keeps a stalled client from holding the fetch.
type stallWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	stall time.Duration
}

func (s stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.w.Write(p)
}

// flush sends what is buffered, giving it stall to complete; a client
// that does not take it ends its own body, which is no error of the fetch.
func (s stallWriter) flush() {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	_ = s.rc.Flush()
}

// stallTimeout is StallTimeout, or its default.
func (c *Cache) stallTimeout() time.Duration {
	if c.StallTimeout <= 0 {
		return 30 * time.Second
	}
	return c.StallTimeout
}

// sendRest writes blob d from byte *n on to w, from the store, once flight
// f has stored it, counting the bytes in *n; cut ends the body short when
// the fetch failed.
func (h *Handler) sendRest(w io.Writer, r *http.Request, rt route, d berth.Digest, f *flight, n *int64, cut func() error) error {
	ctx := r.Context()
	select {
	case <-f.done:
	case <-ctx.Done():
		return cut()
	}
	if f.err != nil {
		return cut()
	}
	rc, _, err := h.Blobs.Open(ctx, d)
	if err != nil {
		h.Logger.ErrorContext(ctx, "open a blob just fetched from its upstream", slog.String("repository", rt.Repo), slog.String("digest", d.String()), errAttr(err))
		return cut()
	}
	defer rc.Close()
	if _, err := rc.Seek(*n, io.SeekStart); err != nil {
		return cut()
	}
	m, err := io.Copy(w, rc)
	*n += m
	if err != nil {
		return cut()
	}
	return nil
}

// fetchBlob fetches d from the upstream and stores it, writing the bytes to
// out as they arrive when out is not nil (its 200 is sent first: sent
// reports whether it was). The blob store verifies the digest and makes the
// blob visible only once it is complete; a client that hangs up does not
// stop the fetch, which others may be waiting for.
//
// When out is set, the bytes go to the requests that join flight f too
// (followBlob), through the stream it sets.
func (h *Handler) fetchBlob(ctx context.Context, w http.ResponseWriter, out io.Writer, f *flight, u berth.Upstream, repo, remote string, d berth.Digest) (sent bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Hour)
	defer cancel()
	body, size, err := h.Cache.Client.GetBlob(ctx, u, remote, d)
	if err != nil {
		return false, err
	}
	defer body.Close()
	// Held shared from the first byte to the link, so that garbage
	// collection never deletes the bytes stored before the link exists. It
	// holds d only (Commits); the process-wide CommitLock of handlers
	// without Commits is held as long.
	unlock, err := h.lockCommit(ctx, d)
	if err != nil {
		return false, err
	}
	defer func() { unlock() }() // the one unlock set when this returns
	counted := &upstreamBody{r: body}
	var tee *lenientWriter
	var followers *blobStream
	if out != nil {
		setBlobHeaders(w.Header(), d, size)
		w.WriteHeader(http.StatusOK)
		sent = true
		tee = &lenientWriter{w: out}
		followers = newBlobStream(size)
		defer followers.end(errFetchAborted) // unless putStreaming ended it
		f.start(followers)
	}
	info, err := h.putStreaming(ctx, w, d, size, counted, tee, followers)
	if h.Cache.Meter != nil {
		h.Cache.Meter.UpstreamBytes(counted.n)
	}
	if h.Meter != nil && tee != nil {
		h.Meter.BlobBytesRead(tee.n)
	}
	switch {
	case err == nil:
	case counted.err != nil:
		return sent, berth.UpstreamUnreachable(u, fmt.Sprintf("blob %s of %s broke off after %d bytes: %s", d.Short(), remote, counted.n, berth.RedactCredentials(counted.err.Error())))
	case berth.IsCode(err, berth.CodeDigestInvalid) || berth.IsCode(err, berth.CodeSizeInvalid):
		return sent, berth.Errorf(berth.CodeDigestInvalid, "upstream %s (%s) sent other content for blob %s of %s than its digest names; nothing was stored", u.Name, u.Host(), d, remote).
			WithHint("pull again; if it repeats, check the upstream with berth upstream verify %s", u.Name).WithDetail("upstream", u.Name)
	default:
		return sent, err // the blob store failed: internal
	}
	if err := h.Meta.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: info.Size, Created: h.Now()}); err != nil {
		return sent, err
	}
	unlock()
	unlock = func() {}
	h.storePending(ctx, repo)
	return sent, nil
}

// Streaming a blob from its upstream: the bytes are read in chunks of
// streamChunkSize, at most streamChunks of them in memory per fetch, and
// each chunk goes to two consumers at once: the blob store (hashing and
// writing) and the client. Neither waits for the other chunk by chunk, so
// the upstream read, the client write, the hash and the disk write all
// overlap; the slower consumer sets the pace once the chunks in memory are
// all in use.
const (
	streamChunkSize = 1 << 20
	streamChunks    = 8
)

// streamBuffers hold chunks. A buffer this large has memory of its own,
// aligned to a page, which a blob store writing with direct I/O takes as
// it is.
var streamBuffers = sync.Pool{New: func() any { b := make([]byte, streamChunkSize); return &b }}

// chunk is one buffer of a blob being fetched, held by the consumers that
// have yet to use it.
type chunk struct {
	buf  *[]byte
	data []byte
	refs atomic.Int32
}

// piece is the part of a chunk the client is handed at once.
type piece struct {
	c    *chunk
	data []byte
}

// putStreaming stores src as blob d while it writes the same bytes to tee
// (when not nil). The client is handed each chunk as soon as it is read,
// except the blob's last byte, which it gets only once the blob store has
// verified the digest (as soon as the store says so through the reader's
// Verified, as disk.Store does before its fsyncs; else once Put returns):
// a client never receives a complete body that was not verified, and when
// the store refuses the bytes (or the upstream breaks off), the client's
// body ends short. When
// the upstream did not say the size (size < 0), where the body ends is
// known only at its end: each chunk waits for the next to be read. A
// client that hangs up does not stop the store; a client that reads slowly
// slows it, as much as the chunks in memory do not absorb, and one that
// stops reading for StallTimeout is dropped.
//
// followers, when set, is handed every byte the client is, when the client
// is (its end: once the store's verdict is known).
func (h *Handler) putStreaming(ctx context.Context, w http.ResponseWriter, d berth.Digest, size int64, src io.Reader, tee *lenientWriter, followers *blobStream) (berth.BlobInfo, error) {
	if tee == nil {
		return h.Blobs.Put(ctx, d, size, src)
	}
	free := make(chan *chunk, streamChunks)
	for range streamChunks {
		free <- &chunk{buf: streamBuffers.Get().(*[]byte)}
	}
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	toStore := make(chan *chunk, streamChunks)   // never blocks: only streamChunks exist
	toClient := make(chan piece, 2*streamChunks) // never blocks: at most two pieces a chunk

	// The client's writer. Write deadlines are the network's own, in real
	// time.
	stall := h.Cache.stallTimeout()
	rc := http.NewResponseController(w)
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for p := range toClient {
			if !tee.failed {
				_ = rc.SetWriteDeadline(time.Now().Add(stall))
			}
			_, _ = tee.Write(p.data)
			release(p.c)
		}
	}()
	// The blob store, reading the chunks as one stream.
	sr := &chunkReader{chunks: toStore, release: release, verified: make(chan struct{})}
	type result struct {
		info berth.BlobInfo
		err  error
	}
	stored := make(chan result, 1)
	storeDone := make(chan struct{})
	go func() {
		info, err := h.Blobs.Put(ctx, d, size, sr)
		stored <- result{info, err}
		close(storeDone)
	}()

	// This goroutine reads the upstream and hands each chunk to the store
	// and the client, but for held: the bytes the client gets only once
	// the blob is verified.
	var read int64 // bytes read from src
	var held piece
	var rerr error
read:
	for {
		var c *chunk
		select {
		case c = <-free:
		case <-storeDone: // Put stopped early: its error says why
			break read
		}
		n, err := fill(src, (*c.buf)[:streamChunkSize])
		if n > 0 {
			c.data = (*c.buf)[:n]
			var now, later []byte
			switch {
			case size < 0:
				if held.c != nil {
					followers.publish(held.data)
					toClient <- held
				}
				later = c.data
			case held.c == nil:
				// All but the body's last byte go out now. (Bytes past
				// the declared size, once the last is held, never do:
				// the store refuses them.)
				k := int(min(max(size-1-read, 0), int64(n)))
				now, later = c.data[:k], c.data[k:]
			}
			refs := int32(1)
			if len(now) > 0 {
				refs++
			}
			if len(later) > 0 {
				refs++
			}
			c.refs.Store(refs)
			toStore <- c
			if len(now) > 0 {
				followers.publish(now)
				toClient <- piece{c, now}
			}
			if len(later) > 0 {
				held = piece{c, later}
			}
			read += int64(n)
		} else {
			free <- c
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	sr.err = rerr // read by Put after the close below
	close(toStore)
	// The held bytes go out once the store has verified the digest: a
	// store that says so (disk) before it syncs the blob, else when Put
	// returns.
	var res result
	returned := false
	select {
	case <-sr.verified:
	case res = <-stored:
		returned = true
	}
	delivered := held.c != nil && (!returned || res.err == nil)
	if delivered {
		followers.publish(held.data)
		followers.end(nil)
		toClient <- held
	} else {
		// The followers learn the outcome now, not once this request's
		// client, maybe a slow one, has read what it was sent.
		if !returned {
			res, returned = <-stored, true
		}
		followers.end(res.err)
	}
	close(toClient)
	<-clientDone
	if delivered && !tee.failed {
		// The whole body reaches the client before the blob is linked.
		_ = rc.SetWriteDeadline(time.Now().Add(stall))
		_ = rc.Flush()
	}
	_ = rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	if !returned {
		res = <-stored
	}
	// Buffers still held by a consumer that stopped are left to the
	// garbage collector.
	for len(free) > 0 {
		streamBuffers.Put((<-free).buf)
	}
	return res.info, res.err
}

// blobStream hands the bytes of a blob being fetched to the requests that
// joined the fetch (followers) as they are read from the upstream, as the
// fetching request's client gets them: the last byte only once the digest
// is verified, none more when the fetch fails.
//
// Memory is bounded per fetch, not per follower: the stream keeps the last
// streamWindow pieces it was handed (each at most a chunk, 1 MiB), copied,
// so that the fetch's own buffers never wait for a follower. A follower
// reads them at its pace; one that falls behind the window stops following
// and waits for the fetch to end, then sends the rest from the store (the
// partially written file is the blob store's own, and not every store has
// one). A request that arrives once the window has moved past the blob's
// first byte waits so from the start; a stream that has no follower then
// stops copying at all.
type blobStream struct {
	size int64 // as the upstream said, or -1

	mu     sync.Mutex
	window [][]byte // pieces base … base+len(window)-1
	base   int
	subs   int  // followers reading
	shut   bool // the window moved on without followers: none more are taken
	ended  bool
	err    error         // why the stream ended short; nil: whole
	wake   chan struct{} // closed when a piece comes or the stream ends
}

// streamWindow is the count of pieces a blobStream keeps.
const streamWindow = streamChunks

// errBehind is blobStream.next's answer to a follower the window moved
// past.
var errBehind = errors.New("the follower fell behind the stream")

func newBlobStream(size int64) *blobStream {
	return &blobStream{size: size, wake: make(chan struct{})}
}

// publish hands the followers a copy of p, the next piece of the blob.
func (s *blobStream) publish(p []byte) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut || s.ended {
		return
	}
	if len(s.window) == streamWindow {
		if s.subs == 0 {
			s.shut, s.window = true, nil
			return
		}
		s.window[0] = nil
		s.window = s.window[1:]
		s.base++
	}
	s.window = append(s.window, bytes.Clone(p))
	close(s.wake)
	s.wake = make(chan struct{})
}

// end ends the stream: whole when err is nil, else short. Only the first
// call counts.
func (s *blobStream) end(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended, s.err = true, err
	close(s.wake)
}

// subscribe admits a follower, unless the blob's first byte has left the
// window or the stream ended short; one admitted calls leave when done.
func (s *blobStream) subscribe() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut || s.base > 0 || (s.ended && s.err != nil) {
		return false
	}
	s.subs++
	return true
}

func (s *blobStream) leave() {
	s.mu.Lock()
	s.subs--
	s.mu.Unlock()
}

// next returns piece i once it is published, io.EOF past the last piece
// of a whole stream, the stream's error past the last of a short one,
// errBehind when the window moved past i, or ctx's error.
func (s *blobStream) next(ctx context.Context, i int) ([]byte, error) {
	for {
		s.mu.Lock()
		switch {
		case s.shut || i < s.base:
			s.mu.Unlock()
			return nil, errBehind
		case i < s.base+len(s.window):
			p := s.window[i-s.base]
			s.mu.Unlock()
			return p, nil
		case s.ended:
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return nil, err
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fill reads from r until b is full or r ends; unlike io.ReadFull, it
// returns r's own error, io.EOF only when r ended cleanly, so that an
// upstream body cut short (io.ErrUnexpectedEOF) is not taken for its end.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// chunkReader reads a stream of chunks until its channel is closed, then
// returns err, or io.EOF when err is nil. Its WriteTo hands the chunks
// themselves to a blob store that takes them so, without a copy.
type chunkReader struct {
	chunks   <-chan *chunk
	release  func(*chunk)
	cur      *chunk
	off      int
	err      error
	verified chan struct{} // closed by Verified
	once     sync.Once
}

var _ berth.VerifiedReader = (*chunkReader)(nil)

// Verified is the blob store saying that the chunks it read matched the
// digest (berth.VerifiedReader).
func (r *chunkReader) Verified() { r.once.Do(func() { close(r.verified) }) }

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.cur == nil {
		c, ok := <-r.chunks
		if !ok {
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.cur, r.off = c, 0
	}
	n := copy(p, r.cur.data[r.off:])
	r.off += n
	if r.off == len(r.cur.data) {
		r.release(r.cur)
		r.cur = nil
	}
	return n, nil
}

// WriteTo writes each chunk to w as it comes, releasing it once w has
// taken it, until the channel is closed; then it returns err.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if r.cur != nil { // partly read
		m, err := w.Write(r.cur.data[r.off:])
		n += int64(m)
		r.release(r.cur)
		r.cur = nil
		if err != nil {
			return n, err
		}
	}
	for c := range r.chunks {
		m, err := w.Write(c.data)
		n += int64(m)
		r.release(c)
		if err != nil {
			return n, err
		}
	}
	return n, r.err
}

// linkFetched links blob d, stored, into repo and stores the manifests held
// for it. Under the commit lock, the bytes seen are kept until the link
// exists.
func (h *Handler) linkFetched(ctx context.Context, repo string, d berth.Digest) error {
	unlock, err := h.lockCommit(ctx, d)
	if err != nil {
		return err
	}
	info, err := h.Blobs.Stat(ctx, d)
	if err == nil {
		err = h.Meta.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: info.Size, Created: h.Now()})
	}
	unlock()
	if err != nil {
		return err
	}
	h.storePending(ctx, repo)
	return nil
}

// upstreamBody counts the bytes read from an upstream and keeps the error
// that ended the reading, if one did, to tell a broken transfer from a
// failing blob store.
type upstreamBody struct {
	r   io.Reader
	n   int64
	err error
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// lenientWriter writes to w until a write fails (the client hung up), then
// counts and drops the rest, so that the fetch it tees goes on.
type lenientWriter struct {
	w      io.Writer
	n      int64
	failed bool
}

func (l *lenientWriter) Write(p []byte) (int, error) {
	if !l.failed {
		n, err := l.w.Write(p)
		l.n += int64(n)
		if err != nil {
			l.failed = true
		}
	}
	return len(p), nil
}

// refuseCacheWrite returns cache_read_only for a request into a cache
// namespace that berth.CacheRefusesDocker refuses (an upload, a manifest
// push).
func refuseCacheWrite(r *http.Request, rt route) error {
	if rt.Upstream == nil {
		return nil
	}
	if _, _, action := required(r.Method, rt); berth.CacheRefusesDocker(action) {
		return berth.CacheReadOnly(*rt.Upstream, rt.Repo)
	}
	return nil
}
