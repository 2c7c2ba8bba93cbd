package berth

import (
	"context"
	"sync"
)

// CommitLocker keeps garbage collection from deleting the bytes of a blob
// while the registry turns an upload of the same digest into a linked blob.
// The registry holds the digest shared from the moment it commits (or, for a
// mount, finds) the bytes until the link exists; GC holds it exclusively
// while it re-checks that the blob is unused and deletes its bytes.
//
// Locks are per digest: each side touches one digest in its critical
// section, so that is all they can race on. A push then never waits for the
// deletion of another blob, and pushes of the same digest run at once.
//
// Every process that writes or collects the same blob store must use lockers
// that exclude each other: one LocalCommitLocker shared within a process, or
// a database-backed locker across replicas.
type CommitLocker interface {
	// LockShared waits until no one holds d exclusively and holds it
	// shared until unlock is called. It returns ctx's error, holding
	// nothing, if ctx ends first.
	LockShared(ctx context.Context, d Digest) (unlock func(), err error)
	// Lock waits until no one holds d and holds it exclusively until unlock
	// is called. It returns ctx's error, holding nothing, if ctx ends first.
	Lock(ctx context.Context, d Digest) (unlock func(), err error)
}

var _ CommitLocker = (*LocalCommitLocker)(nil)

// LocalCommitLocker is a CommitLocker within one process: the embedded
// SQLite installation. Its zero value is ready to use. A waiting exclusive
// holder keeps new shared holders of the same digest out, so GC is not
// starved by a stream of pushes.
type LocalCommitLocker struct {
	mu    sync.Mutex
	locks map[Digest]*digestLock
}

// digestLock is the state of one digest that someone holds or waits for.
type digestLock struct {
	readers, writersWaiting int
	writer                  bool
	changed                 chan struct{} // closed, and replaced, on each change
}

func (l *LocalCommitLocker) LockShared(ctx context.Context, d Digest) (func(), error) {
	return l.acquire(ctx, d, false)
}

func (l *LocalCommitLocker) Lock(ctx context.Context, d Digest) (func(), error) {
	return l.acquire(ctx, d, true)
}

func (l *LocalCommitLocker) acquire(ctx context.Context, d Digest, exclusive bool) (func(), error) {
	waiting := false
	for {
		l.mu.Lock()
		dl := l.entry(d)
		free := !dl.writer && dl.writersWaiting == 0
		if exclusive {
			free = !dl.writer && dl.readers == 0
		}
		if free {
			if exclusive {
				dl.writer = true
				if waiting {
					dl.writersWaiting--
				}
			} else {
				dl.readers++
			}
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { l.release(d, exclusive) }) }, nil
		}
		if exclusive && !waiting {
			dl.writersWaiting++
			waiting = true
		}
		changed := dl.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			if waiting {
				l.mu.Lock()
				dl := l.entry(d)
				dl.writersWaiting--
				l.changedLocked(d, dl) // readers held back for us may go
				l.mu.Unlock()
			}
			return nil, ctx.Err()
		}
	}
}

func (l *LocalCommitLocker) release(d Digest, exclusive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dl := l.entry(d)
	if exclusive {
		dl.writer = false
	} else {
		dl.readers--
	}
	l.changedLocked(d, dl)
}

// entry returns the state of d, created when nobody holds or awaits it.
// The caller holds mu.
func (l *LocalCommitLocker) entry(d Digest) *digestLock {
	if l.locks == nil {
		l.locks = map[Digest]*digestLock{}
	}
	dl := l.locks[d]
	if dl == nil {
		dl = &digestLock{changed: make(chan struct{})}
		l.locks[d] = dl
	}
	return dl
}

// changedLocked wakes whoever waits on d, and forgets d once it is idle:
// a waiter looks its digest up again after each wake-up. The caller holds mu.
func (l *LocalCommitLocker) changedLocked(d Digest, dl *digestLock) {
	close(dl.changed)
	dl.changed = make(chan struct{})
	if dl.readers == 0 && !dl.writer && dl.writersWaiting == 0 {
		delete(l.locks, d)
	}
}
