package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
)

// TestKeyringShared checks that two replicas' keyrings on one schema agree:
// a rotation through one is seen by the other after a notification, and the
// database holds no private key in clear.
func TestKeyringShared(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	sealer, err := oauth.NewSealer(bytes.Repeat([]byte{7}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ka, err := oauth.OpenKeyring(oauth.SealedKeyStore{Store: a.Keys(), Sealer: sealer}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notified := make(chan string, 16)
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Listen(ctx, func(what string) { notified <- what }, func(err error) { t.Log(err) }, ready)
	<-ready
	kb, err := oauth.OpenKeyring(oauth.SealedKeyStore{Store: b.Keys(), Sealer: sealer}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kb.Keys(), ka.Keys(); len(got) != 1 || got[0].ID != want[0].ID {
		t.Fatalf("replica B has keys %v, want A's %v", got, want)
	}
	kid, err := ka.Rotate(now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case what := <-notified:
		if what != postgres.PayloadKeys {
			t.Fatalf("notified %q, want %q", what, postgres.PayloadKeys)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification of the rotation within 5s")
	}
	if err := kb.Reload(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if keys := kb.Keys(); len(keys) != 2 || keys[1].ID != kid {
		t.Fatalf("after the rotation through A, B has %v, want %s signing", keys, kid)
	}
	if n := pgtest.Int(t, dsn, `SELECT count(*) FROM signing_keys WHERE position('"d"'::bytea in sealed) > 0`); n != 0 {
		t.Errorf("%d signing keys are stored in clear", n)
	}
	other, _ := oauth.NewSealer(bytes.Repeat([]byte{8}, 32), rand.Reader)
	if _, err := oauth.OpenKeyring(oauth.SealedKeyStore{Store: b.Keys(), Sealer: other}, now, rand.Reader); err == nil {
		t.Error("a keyring opened with another key encryption key")
	}
}

// TestLimiterShared checks that failures counted by one replica's limiter
// hold on another's, and that a success clears them on both.
func TestLimiterShared(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	fail := func(err error) { t.Error(err) }
	la := oauth.NewLimiter(4, time.Minute, 0, clock).Share(a.Limits(), "client", fail)
	lb := oauth.NewLimiter(4, time.Minute, 0, clock).Share(b.Limits(), "client", fail)
	la.Fail("ci")
	lb.Fail("ci")
	la.Fail("ci")
	lb.Fail("ci")
	if ok, _ := la.Allow("ci"); ok {
		t.Error("A allows after 4 failures split across A and B")
	}
	if ok, wait := lb.Allow("ci"); ok || wait <= 0 {
		t.Errorf("B allows after 4 failures split across A and B (wait %v)", wait)
	}
	if ok, _ := lb.Allow("other"); !ok {
		t.Error("another key is limited")
	}
	now.Store(t0.Add(time.Minute).UnixNano())
	if ok, _ := la.Allow("ci"); !ok {
		t.Error("A still refuses once the window passed")
	}
	la.Fail("ci")
	if ok, _ := lb.Allow("ci"); !ok {
		t.Error("B refuses after one new failure")
	}
	lb.Succeed("ci")
	if n := pgtest.Int(t, dsn, `SELECT count(*) FROM attempt_limits`); n != 0 {
		t.Errorf("after a success, %d counters remain", n)
	}
	if n, err := a.Limits().DeleteForgiven(t.Context(), clock()); err != nil || n != 0 {
		t.Errorf("DeleteForgiven = %d, %v", n, err)
	}
}

// TestRunExclusive checks that a job runs on one replica at a time, and
// that a replica whose connection dies releases it.
func TestRunExclusive(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	ran, err := a.RunExclusive(ctx, "gc", func(ctx context.Context) error {
		ran, err := b.RunExclusive(ctx, "gc", func(context.Context) error { return nil })
		if err != nil || ran {
			t.Errorf("B ran gc while A ran it: %v, %v", ran, err)
		}
		ran, err = b.RunExclusive(ctx, "audit", func(context.Context) error { return nil })
		if err != nil || !ran {
			t.Errorf("B did not run another job: %v, %v", ran, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("A did not run gc: %v, %v", ran, err)
	}
	if ran, err := b.RunExclusive(ctx, "gc", func(context.Context) error { return nil }); err != nil || !ran {
		t.Errorf("B did not run gc after A finished: %v, %v", ran, err)
	}

	// A holder whose session is terminated loses the lock, and learns it.
	l, ok, err := a.TryLock(ctx, "gc")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	pgtest.Exec(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
		AND objid = (`+"hashtextextended(current_schema() || '/gc', 0)"+` & 4294967295)::oid`)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not reported lost within 10s of its session ending")
	}
	l.Release()
	lb, ok, err := b.TryLock(ctx, "gc")
	if err != nil || !ok {
		t.Fatalf("B cannot take the lock of a terminated session: %v, %v", ok, err)
	}
	lb.Release()
}
