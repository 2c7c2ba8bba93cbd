package sqlite

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
)

// The read cache's counter (see sqlstore.Store.CacheReads): the wal-index
// header at the start of the -shm file, which every connection to a WAL
// database, in this process or another, maps and rewrites at each commit:
// its iChange field (offset 8, in the machine's byte order) is incremented
// by every committed write transaction
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). A write
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

// walIndexVersion is the iVersion of every wal-index header SQLite writes.
const walIndexVersion = 3007000

// walIndex reads the commit counter of the wal-index.
type walIndex struct {
	shm    *os.File // the -shm file, read-only
	mapped []byte   // its first page, mapped where the system can
}

// counter returns the wal-index's commit counter, or false when it cannot be
// read (then nothing is served from the cache or kept in it).
func (c *walIndex) counter() (uint64, bool) {
	if c == nil {
		return 0, false
	}
	if c.mapped != nil {
		version, isInit, change, ok := readMapped(c.mapped)
		return uint64(change), ok && version == walIndexVersion && isInit == 1
	}
	var h [16]byte
	if n, err := c.shm.ReadAt(h[:], 0); n != len(h) || err != nil {
		return 0, false
	}
	if binary.NativeEndian.Uint32(h[0:]) != walIndexVersion || h[12] != 1 { // iVersion, isInit
		return 0, false
	}
	return uint64(binary.NativeEndian.Uint32(h[8:])), true
}

func (c *walIndex) close() error {
	if c == nil {
		return nil
	}
	var err error
	if c.mapped != nil {
		err = unmapHeader(c.mapped) // a read after Close faults: a miss
	}
	return errors.Join(err, c.shm.Close())
}

// openWALIndex opens the wal-index of db, or returns nil (no read cache) when it cannot
// be shown to follow commits: a write on the write connection must move its
// counter.
func openWALIndex(ctx context.Context, db *DB) *walIndex {
	f, err := os.Open(db.path + "-shm")
	if err != nil {
		return nil
	}
	c := &walIndex{shm: f, mapped: mapHeader(f)}
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
