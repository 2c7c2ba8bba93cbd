package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth"
)

var _ berth.CommitLocker = (*CommitLocker)(nil)

// lockStripes is how many lock files a CommitLocker spreads digests over: a
// push waits for garbage collection only when their digests share a stripe.
const lockStripes = 256

// CommitLocker is the berth.CommitLocker of every process working on one data
// folder: berth serve and a berth gc run beside it. It holds a digest first
// in Local, which orders the goroutines of this process (a waiting collector
// keeps new pushes out), then by an advisory file lock (flock) on the
// digest's stripe under Dir, which excludes other processes; the kernel drops
// a dead process's locks. Where flock does not exist it holds Local only.
type CommitLocker struct {
	Dir   string
	Local berth.LocalCommitLocker
}

// NewCommitLocker returns a locker whose lock files live in dir, creating it.
func NewCommitLocker(dir string) (*CommitLocker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock folder: %w", err)
	}
	return &CommitLocker{Dir: dir}, nil
}

func (l *CommitLocker) LockShared(ctx context.Context, d berth.Digest) (func(), error) {
	return l.acquire(ctx, d, false)
}

func (l *CommitLocker) Lock(ctx context.Context, d berth.Digest) (func(), error) {
	return l.acquire(ctx, d, true)
}

func (l *CommitLocker) acquire(ctx context.Context, d berth.Digest, exclusive bool) (func(), error) {
	var local func()
	var err error
	if exclusive {
		local, err = l.Local.Lock(ctx, d)
	} else {
		local, err = l.Local.LockShared(ctx, d)
	}
	if err != nil {
		return nil, err
	}
	file, err := lockFile(ctx, l.stripe(d), exclusive)
	if err != nil {
		local()
		return nil, err
	}
	return func() { file(); local() }, nil
}

// stripe is the lock file of d: one of lockStripes, by the first two hex
// digits of its encoded part (uniform: it is a hash).
func (l *CommitLocker) stripe(d berth.Digest) string {
	e := d.Encoded()
	if len(e) < 2 {
		e = "00"
	}
	return filepath.Join(l.Dir, e[:2]+".lock")
}
