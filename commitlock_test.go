package berth_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// held reports whether acquire gets its lock within a short wait; when it
// does, the lock is released at once.
func held(t *testing.T, acquire func(context.Context, berth.Digest) (func(), error), d berth.Digest) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	unlock, err := acquire(ctx, d)
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	return true
}

func TestLocalCommitLocker(t *testing.T) {
	var l berth.LocalCommitLocker
	a, b := berth.DigestOf("", []byte("a")), berth.DigestOf("", []byte("b"))
	ctx := t.Context()

	unlockShared, err := l.LockShared(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !held(t, l.LockShared, a) {
		t.Error("a second shared holder of the same digest waits")
	}
	if held(t, l.Lock, a) {
		t.Error("an exclusive holder got a digest held shared")
	}
	if !held(t, l.Lock, b) {
		t.Error("an exclusive holder of another digest waits")
	}
	unlockShared()
	unlockShared() // twice is harmless

	unlockExcl, err := l.Lock(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if held(t, l.LockShared, a) || held(t, l.Lock, a) {
		t.Error("a digest held exclusively was held again")
	}
	if !held(t, l.LockShared, b) {
		t.Error("a shared holder of another digest waits")
	}
	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		unlock, err := l.LockShared(ctx, a)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	unlockExcl()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting shared holder never got the lock")
	}
}

// TestLocalCommitLockerWriterFirst: a waiting collector keeps new pushes of
// the digest out, and stops doing so when it gives up.
func TestLocalCommitLockerWriterFirst(t *testing.T) {
	var l berth.LocalCommitLocker
	d := berth.DigestOf("", []byte("d"))
	unlock, err := l.LockShared(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	wctx, giveUp := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() {
		_, err := l.Lock(wctx, d)
		waited <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); l.WritersWaiting(d) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the exclusive holder never started waiting")
		}
		runtime.Gosched()
	}
	if held(t, l.LockShared, d) {
		t.Error("a new shared holder overtook the waiting exclusive one")
	}
	giveUp()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled exclusive wait returned %v", err)
	}
	if !held(t, l.LockShared, d) {
		t.Error("shared holders still wait after the exclusive one gave up")
	}
}
