package disk_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
)

// Two lockers on one folder stand for two processes (berth serve and a
// berth gc beside it): each holds its own open files, and flock treats two
// open files of one process as it treats two processes.
func twoLockers(t *testing.T) (a, b *disk.CommitLocker) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("flock does not exist here; the locker excludes within one process only")
	}
	dir := t.TempDir()
	a, err := disk.NewCommitLocker(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err = disk.NewCommitLocker(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// blocked reports whether acquire is still waiting after a short bound.
func blocked(t *testing.T, acquire func(context.Context) (func(), error)) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	unlock, err := acquire(ctx)
	if err == nil {
		unlock()
		return false
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting ended with %v, want the deadline", err)
	}
	return true
}

const (
	d1 = berth.Digest("sha256:aa00000000000000000000000000000000000000000000000000000000000001")
	d2 = berth.Digest("sha256:bb00000000000000000000000000000000000000000000000000000000000002")
)

func TestCommitLockerAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	serve, gc := twoLockers(t)

	push, err := serve.LockShared(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	if !blocked(t, func(ctx context.Context) (func(), error) { return gc.Lock(ctx, d1) }) {
		t.Fatal("collection took a digest another process is pushing")
	}
	other, err := serve.LockShared(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	other()
	if blocked(t, func(ctx context.Context) (func(), error) { return gc.Lock(ctx, d2) }) {
		t.Fatal("collection of another digest waited for a push")
	}
	push()

	del, err := gc.Lock(ctx, d1)
	if err != nil {
		t.Fatalf("collection after the push ended: %v", err)
	}
	if !blocked(t, func(ctx context.Context) (func(), error) { return serve.LockShared(ctx, d1) }) {
		t.Fatal("a push linked a digest another process is deleting")
	}
	del()
	unlock, err := serve.LockShared(ctx, d1)
	if err != nil {
		t.Fatalf("push after the collection ended: %v", err)
	}
	unlock()
}

// TestCommitLockerCancelHoldsNothing: a wait that ctx ends leaves nothing held.
func TestCommitLockerCancelHoldsNothing(t *testing.T) {
	ctx := context.Background()
	serve, gc := twoLockers(t)
	push, err := serve.LockShared(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	if !blocked(t, func(ctx context.Context) (func(), error) { return gc.Lock(ctx, d1) }) {
		t.Fatal("collection took a digest being pushed")
	}
	push()
	for _, l := range []*disk.CommitLocker{serve, gc} {
		unlock, err := l.Lock(ctx, d1)
		if err != nil {
			t.Fatalf("after a cancelled wait: %v", err)
		}
		unlock()
	}
}
