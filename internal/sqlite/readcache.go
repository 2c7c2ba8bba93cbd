package sqlite

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"sync"

	"github.com/berth-dev/berth"
)

// The read cache. A manifest or blob GET costs one point read, and SQLite
// spends most of it beginning and ending the read transaction, not finding
// the row; database/sql and the driver add some forty allocations. So the
// results of FindManifest and FindBlobLink are kept in memory for as long as
// the database has not changed, by any connection of any process.
//
// What tells is the wal-index header at the start of the -shm file, which
// every connection to a WAL database, in this process or another, maps and
// rewrites at each commit: its iChange field (offset 8, in the machine's
// byte order) is incremented by every committed write transaction
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Each
// entry is stored with the counter read before the query that produced it,
// and served only while the counter still has that value: a commit made
// after that read makes it a miss, even one the query already saw. A write
// that returned has committed, so the next read sees the new counter: what
// this process wrote, garbage collection run beside it, anything a break-
// glass command wrote, counts on the next request, as without the cache.
// The price: every commit (audit batches included) empties the cache.
//
// The header is read through a read-only shared mapping of the file's first
// page where the system has mmap (no system call), else with pread.
//
// The -shm file is the wal-index only while this process has the database
// open (no other process may truncate or remove it while one of our
// connections holds it), and only if SQLite maps it, which Open checks
// with a write that must move the counter; otherwise the cache stays off.

// Bounds of what the cache holds between two commits; past them an entry is
// not kept (the read still answers).
const (
	readCacheManifests     = 4096
	readCacheManifestBytes = 16 << 20
	readCacheLinks         = 16384
)

// walIndexVersion is the iVersion of every wal-index header SQLite writes.
const walIndexVersion = 3007000

type manifestKey struct{ repo, ref string }

type linkKey struct {
	repo string
	d    berth.Digest
}

// readCache holds point reads valid at one value of the commit counter.
type readCache struct {
	shm    *os.File // the -shm file, read-only; nil: no cache
	mapped []byte   // its first page, mapped where the system can

	mu        sync.RWMutex
	gen       uint32 // the counter every entry was read at
	manifests map[manifestKey]*berth.Manifest
	links     map[linkKey]berth.BlobLink
	bytes     int // manifest content held
}

// counter returns the wal-index's commit counter, or false when it cannot be
// read (then nothing is served from the cache or kept in it).
func (c *readCache) counter() (uint32, bool) {
	if c == nil || c.shm == nil {
		return 0, false
	}
	if c.mapped != nil {
		version, isInit, change, ok := readMapped(c.mapped)
		return change, ok && version == walIndexVersion && isInit == 1
	}
	var h [16]byte
	if n, err := c.shm.ReadAt(h[:], 0); n != len(h) || err != nil {
		return 0, false
	}
	if binary.NativeEndian.Uint32(h[0:]) != walIndexVersion || h[12] != 1 { // iVersion, isInit
		return 0, false
	}
	return binary.NativeEndian.Uint32(h[8:]), true
}

// manifest returns the manifest kept for repo:ref at counter n.
func (c *readCache) manifest(n uint32, repo, ref string) (*berth.Manifest, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != n {
		return nil, false
	}
	m, ok := c.manifests[manifestKey{repo, ref}]
	return m, ok
}

// link returns the blob link kept for d in repo at counter n.
func (c *readCache) link(n uint32, repo string, d berth.Digest) (berth.BlobLink, bool) {
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
func (c *readCache) at(n uint32) bool {
	if c.gen == n && c.manifests != nil {
		return true
	}
	if now, ok := c.counter(); !ok || now != n {
		return false
	}
	c.gen, c.bytes = n, 0
	// Emptied, not made anew: commits come often while pushes run, and
	// the maps never hold more than the bounds.
	if c.manifests == nil {
		c.manifests, c.links = map[manifestKey]*berth.Manifest{}, map[linkKey]berth.BlobLink{}
	}
	clear(c.manifests)
	clear(c.links)
	return true
}

// keepManifest keeps m, read for repo:ref after the counter was n.
func (c *readCache) keepManifest(n uint32, repo, ref string, m *berth.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at(n) || len(c.manifests) >= readCacheManifests || c.bytes+len(m.Content) > readCacheManifestBytes {
		return
	}
	c.manifests[manifestKey{repo, ref}] = m
	c.bytes += len(m.Content)
}

// keepLink keeps l, read after the counter was n.
func (c *readCache) keepLink(n uint32, l berth.BlobLink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at(n) || len(c.links) >= readCacheLinks {
		return
	}
	c.links[linkKey{l.Repository, l.Digest}] = l
}

func (c *readCache) close() error {
	if c == nil || c.shm == nil {
		return nil
	}
	var err error
	if c.mapped != nil {
		err = unmapHeader(c.mapped) // a read after Close faults: a miss
	}
	return errors.Join(err, c.shm.Close())
}

// openReadCache opens the read cache of db, or returns nil (no cache) when the wal-index cannot
// be shown to follow commits: a write on the write connection must move its
// counter.
func openReadCache(ctx context.Context, db *DB) *readCache {
	f, err := os.Open(db.path + "-shm")
	if err != nil {
		return nil
	}
	c := &readCache{shm: f, mapped: mapHeader(f)}
	before, ok := c.counter()
	if ok {
		// Setting user_version to its own value commits a write that
		// changes nothing.
		var v int64
		if err := db.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err == nil {
			_, err = db.write.ExecContext(ctx, "PRAGMA user_version = "+strconv.FormatInt(v, 10))
			after, ok2 := c.counter()
			ok = err == nil && ok2 && after != before
		} else {
			ok = false
		}
	}
	if !ok {
		c.close()
		return nil
	}
	return c
}

// FindManifest returns the manifest that ref names in repo, as
// sqlstore.Store.FindManifest does, from the read cache while the database
// is unchanged. The manifest's Content, References and Annotations may be
// shared with other callers: they must not be changed.
func (db *DB) FindManifest(ctx context.Context, repo, ref string) (*berth.Manifest, error) {
	n, ok := db.cache.counter()
	if ok {
		if m, hit := db.cache.manifest(n, repo, ref); hit {
			cp := *m
			return &cp, nil
		}
	}
	m, err := db.Store.FindManifest(ctx, repo, ref)
	if err == nil && ok {
		kept := *m
		db.cache.keepManifest(n, repo, ref, &kept)
	}
	return m, err
}

// FindBlobLink returns the link of d in repo, as sqlstore.Store.FindBlobLink
// does, from the read cache while the database is unchanged.
func (db *DB) FindBlobLink(ctx context.Context, repo string, d berth.Digest) (berth.BlobLink, error) {
	n, ok := db.cache.counter()
	if ok {
		if l, hit := db.cache.link(n, repo, d); hit {
			return l, nil
		}
	}
	l, err := db.Store.FindBlobLink(ctx, repo, d)
	if err == nil && ok {
		db.cache.keepLink(n, l)
	}
	return l, err
}
