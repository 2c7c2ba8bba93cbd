package sqlstore

import (
	"context"
	"sync"

	"github.com/berth-dev/berth"
)

// The read cache. A manifest or blob GET costs one point read, which on
// SQLite is mostly beginning and ending the read transaction and on
// PostgreSQL a round trip, not finding the row. So an engine that can tell
// when the data may have changed keeps the results of FindManifest and
// FindBlobLink in memory until it has: CacheReads gives the Store a counter
// that moves at (or, on the same process, before the return of) every
// committed write that could make an entry stale.
//
// Each entry is kept with the counter read before the query that produced
// it, and served only while the counter still has that value: a change
// committed after that read makes it a miss, even one the query already
// saw. Misses (unknown manifests and blobs) are never kept, so a write that
// only adds a row needs to move nothing. One that changes a kept row does:
// linking a blob again refreshes its link's Created, which on PostgreSQL
// moves the counter of the replica that wrote it, but not another's, whose
// entry shows the old time until its counter next moves (at the latest
// within a second); nothing that reads a link through the cache uses that
// time. The counter may move more often than needed, which only costs
// misses.

// Bounds of what the cache holds between two moves of the counter; past
// them an entry is not kept (the read still answers).
const (
	readCacheManifests     = 4096
	readCacheManifestBytes = 16 << 20
	readCacheLinks         = 16384
)

// A Counter returns the engine's change counter, or false when it cannot
// vouch for it (then nothing is served from the cache nor kept in it).
type Counter func() (uint64, bool)

type manifestKey struct{ repo, ref string }

type linkKey struct {
	repo string
	d    berth.Digest
}

// readCache holds point reads valid at one value of the counter.
type readCache struct {
	counter Counter

	mu        sync.RWMutex
	gen       uint64 // the counter every entry was read at
	manifests map[manifestKey]*berth.Manifest
	links     map[linkKey]berth.BlobLink
	bytes     int // manifest content held
}

// CacheReads makes FindManifest and FindBlobLink answer from memory while
// counter has not moved. Call it before the Store is shared.
func (s *Store) CacheReads(counter Counter) { s.cache = &readCache{counter: counter} }

// now returns the counter, or false when there is no cache or it cannot be
// trusted.
func (c *readCache) now() (uint64, bool) {
	if c == nil {
		return 0, false
	}
	return c.counter()
}

// manifest returns the manifest kept for repo:ref at counter n.
func (c *readCache) manifest(n uint64, repo, ref string) (*berth.Manifest, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != n {
		return nil, false
	}
	m, ok := c.manifests[manifestKey{repo, ref}]
	return m, ok
}

// link returns the blob link kept for d in repo at counter n.
func (c *readCache) link(n uint64, repo string, d berth.Digest) (berth.BlobLink, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != n {
		return berth.BlobLink{}, false
	}
	l, ok := c.links[linkKey{repo, d}]
	return l, ok
}

// at readies the cache to keep what was read after the counter was n, and
// reports whether it may: not when the counter has moved on since, for
// what was read may already be stale. Called with mu held.
func (c *readCache) at(n uint64) bool {
	if c.gen == n && c.manifests != nil {
		return true
	}
	if now, ok := c.counter(); !ok || now != n {
		return false
	}
	c.gen, c.bytes = n, 0
	// Emptied, not made anew: the counter moves often while pushes run,
	// and the maps never hold more than the bounds.
	if c.manifests == nil {
		c.manifests, c.links = map[manifestKey]*berth.Manifest{}, map[linkKey]berth.BlobLink{}
	}
	clear(c.manifests)
	clear(c.links)
	return true
}

// keepManifest keeps m, read for repo:ref after the counter was n.
func (c *readCache) keepManifest(n uint64, repo, ref string, m *berth.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at(n) || len(c.manifests) >= readCacheManifests || c.bytes+len(m.Content) > readCacheManifestBytes {
		return
	}
	c.manifests[manifestKey{repo, ref}] = m
	c.bytes += len(m.Content)
}

// keepLink keeps l, read after the counter was n.
func (c *readCache) keepLink(n uint64, l berth.BlobLink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at(n) || len(c.links) >= readCacheLinks {
		return
	}
	c.links[linkKey{l.Repository, l.Digest}] = l
}

// FindManifest returns the manifest that ref (a tag or a digest) names in
// repo, or manifest_unknown; from the read cache while the counter has not
// moved. The manifest's Content, References and Annotations may be shared
// with other callers: they must not be changed.
func (s *Store) FindManifest(ctx context.Context, repo, ref string) (*berth.Manifest, error) {
	n, ok := s.cache.now()
	if ok {
		if m, hit := s.cache.manifest(n, repo, ref); hit {
			cp := *m
			return &cp, nil
		}
	}
	m, err := s.findManifest(ctx, repo, ref)
	if err == nil && ok {
		kept := *m
		s.cache.keepManifest(n, repo, ref, &kept)
	}
	return m, err
}

// FindBlobLink returns the link of d in repo, or blob_unknown; from the
// read cache while the counter has not moved.
func (s *Store) FindBlobLink(ctx context.Context, repo string, d berth.Digest) (berth.BlobLink, error) {
	n, ok := s.cache.now()
	if ok {
		if l, hit := s.cache.link(n, repo, d); hit {
			return l, nil
		}
	}
	l, err := s.findBlobLink(ctx, repo, d)
	if err == nil && ok {
		s.cache.keepLink(n, l)
	}
	return l, err
}

// FindBlobLinks returns the links of those of ds that repo holds; those the
// read cache keeps (while the counter has not moved) are not read again,
// and the others are read in one statement (Dialect.Arrays) or one each.
func (s *Store) FindBlobLinks(ctx context.Context, repo string, ds []berth.Digest) (map[berth.Digest]berth.BlobLink, error) {
	links := make(map[berth.Digest]berth.BlobLink, len(ds))
	n, ok := s.cache.now()
	var missed []berth.Digest
	for _, d := range ds {
		if ok {
			if l, hit := s.cache.link(n, repo, d); hit {
				links[d] = l
				continue
			}
		}
		missed = append(missed, d)
	}
	found, err := s.findBlobLinks(ctx, repo, missed)
	if err != nil {
		return nil, err
	}
	for _, l := range found {
		links[l.Digest] = l
		if ok {
			s.cache.keepLink(n, l)
		}
	}
	return links, nil
}

// ReadCacheHeld returns how many manifests and blob links the read cache
// holds now, for tests and diagnostics.
func (s *Store) ReadCacheHeld() (manifests, links int) {
	if s.cache == nil {
		return 0, 0
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return len(s.cache.manifests), len(s.cache.links)
}
