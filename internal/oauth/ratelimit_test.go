package oauth_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/testclock"
)

// clock is a settable time source.
func failN(l *oauth.Limiter, key string, n int) {
	for range n {
		l.Fail(key)
	}
}

func TestLimiterBlocksPastTheLimit(t *testing.T) {
	c := testclock.New(t0)
	l := oauth.NewLimiter(10, time.Minute, 100, c.Now)

	failN(l, "client-a", 9)
	if ok, _ := l.Allow("client-a"); !ok {
		t.Fatal("blocked after 9 failures of 10")
	}
	l.Fail("client-a")
	ok, retry := l.Allow("client-a")
	if ok {
		t.Fatal("allowed after 10 failures")
	}
	// One failure refills every minute/10 = 6 s.
	if retry != 6*time.Second || oauth.RetryAfterSeconds(retry) != 6 {
		t.Errorf("retryAfter = %v, want 6s", retry)
	}
	c.Advance(2 * time.Second)
	if ok, retry := l.Allow("client-a"); ok || retry != 4*time.Second {
		t.Errorf("2 s later: ok %v retry %v, want blocked for 4s more", ok, retry)
	}
	c.Advance(4 * time.Second)
	if ok, _ := l.Allow("client-a"); !ok {
		t.Fatal("still blocked once a failure refilled")
	}
	l.Fail("client-a")
	if ok, _ := l.Allow("client-a"); ok {
		t.Error("the refilled failure was not used up by the next one")
	}
	// A full window refills everything, and the key is forgotten.
	c.Advance(time.Minute)
	if ok, _ := l.Allow("client-a"); !ok {
		t.Error("blocked a minute later")
	}
	if l.Len() != 0 {
		t.Errorf("Len = %d after the bucket refilled, want 0", l.Len())
	}
}

func TestLimiterKeysAreIsolated(t *testing.T) {
	c := testclock.New(t0)
	clients := oauth.NewLimiter(10, time.Minute, 100, c.Now)
	addresses := oauth.NewLimiter(10, time.Minute, 100, c.Now)

	failN(clients, "client-a", 10)
	failN(addresses, "198.51.100.7", 10)
	if ok, _ := clients.Allow("client-a"); ok {
		t.Error("client-a is not limited")
	}
	for _, tc := range []struct {
		l   *oauth.Limiter
		key string
	}{{clients, "client-b"}, {addresses, "198.51.100.8"}, {addresses, "client-a"}, {clients, "198.51.100.7"}} {
		if ok, _ := tc.l.Allow(tc.key); !ok {
			t.Errorf("%s is limited by another key's failures", tc.key)
		}
	}
}

func TestLimiterSucceedForgets(t *testing.T) {
	c := testclock.New(t0)
	l := oauth.NewLimiter(3, time.Minute, 100, c.Now)
	failN(l, "k", 3)
	l.Succeed("k")
	if ok, _ := l.Allow("k"); !ok {
		t.Error("blocked after Succeed")
	}
	failN(l, "k", 2)
	if ok, _ := l.Allow("k"); !ok {
		t.Error("Succeed did not reset the count")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	c := testclock.New(t0)
	l := oauth.NewLimiter(10, time.Minute, 50, c.Now)
	for i := range 1000 {
		l.Fail(fmt.Sprint("key-", i))
	}
	if l.Len() != 50 {
		t.Errorf("Len = %d after 1000 keys, want the bound 50", l.Len())
	}
	// Allow of unknown keys stores nothing.
	for i := range 1000 {
		l.Allow(fmt.Sprint("other-", i))
	}
	if l.Len() != 50 {
		t.Errorf("Len = %d after Allow of unknown keys, want 50", l.Len())
	}
	// The most recently failing keys are kept.
	failN(l, "key-999", 9)
	if ok, _ := l.Allow("key-999"); ok {
		t.Error("the most recent key was evicted")
	}
}

func TestTooManyAttempts(t *testing.T) {
	err := oauth.TooManyAttempts("client ci-web", 5500*time.Millisecond)
	if err.Code != berth.CodeTooManyAttempts || berth.LookupCode(err.Code).Status != http.StatusTooManyRequests {
		t.Errorf("code %s, status %d", err.Code, berth.LookupCode(err.Code).Status)
	}
	if err.Detail["retry_after"] != 6 {
		t.Errorf("retry_after = %v, want 6 (rounded up)", err.Detail["retry_after"])
	}
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := oauth.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
