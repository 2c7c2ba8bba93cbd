package postgres

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/sqlstore"
)

// The read cache on PostgreSQL (see sqlstore.Store.CacheReads): manifest
// and blob GETs are answered without a round trip while nothing they read
// can have changed. Its counter is this DB's own, and it moves
//
//   - on each notification of this schema on ChannelInvalidate, which the
//     writes that can make a kept read stale (Conn.Changed: a tag moved, a
//     manifest, tag, blob link or repository deleted) send, so that it is
//     delivered when they commit: another replica's change is seen as soon
//     as PostgreSQL delivers it, within milliseconds;
//   - when such a write of this DB commits, before it returns: what this
//     replica changed is read back at once. Other writes (blobs linked,
//     uploads, audit records, tokens) move nothing, so a replica taking
//     pushes keeps serving GETs from memory;
//   - at each whole second, so that a notice lost on a connection that
//     failed unnoticed costs at most a second of staleness, the bound the
//     identity provider's cached state has too (oauth.StateTTL).
//
// The counter is trusted only while Listen has its LISTEN in place: a DB
// that does not listen (a break-glass command, a test) reads every time.

// PayloadRegistry is what a notification on ChannelInvalidate says when a
// tag, manifest, blob link or repository changed under the read caches.
const PayloadRegistry = "registry"

// changes is the read cache's counter.
type changes struct {
	n         atomic.Uint64 // moves at each change
	listeners atomic.Int32  // Listen connections with LISTEN in place
	now       func() time.Time
	start     time.Time // seconds are counted from it, on the monotonic clock
}

// moved records a change.
func (c *changes) moved() { c.n.Add(1) }

// counter is a sqlstore.Counter: the changes in the high 30 bits, the
// whole seconds since start in the low 34 (monotonic: a wall clock set
// back cannot bring an older value back).
func (c *changes) counter() (uint64, bool) {
	if c.listeners.Load() <= 0 {
		return 0, false
	}
	return c.n.Load()<<34 | uint64(c.now().Sub(c.start)/time.Second)&(1<<34-1), true
}

// Changed announces on ChannelInvalidate, when q's transaction commits,
// that the read caches must drop what they keep. This DB's own counter
// moves when the transaction commits; for q outside a transaction, whose
// writes have committed, at once.
func (c conn) Changed(ctx context.Context, q sqlstore.Querier) error {
	if t, ok := q.(*pgxTx); ok && t.ch != nil {
		t.changed = true
	} else {
		defer c.ch.moved()
	}
	return notifyTx(ctx, q, PayloadRegistry)
}
