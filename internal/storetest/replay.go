package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

var replayTests = []test{
	{"RememberAssertionOnce", testRememberAssertionOnce},
	{"RememberAssertionAfterExpiry", testRememberAssertionAfterExpiry},
	{"RememberAssertionRace", testRememberAssertionRace},
	{"DeleteExpiredAssertions", testDeleteExpiredAssertions},
	{"AssertionRemembered", testAssertionRemembered},
}

// AssertionRemembered finds a live key, not an expired or unknown one, and
// records nothing.
func testAssertionRemembered(t *testing.T, s berth.MetadataStore) {
	ctx := context.Background()
	found := func(key string, now time.Time) bool {
		t.Helper()
		ok, err := s.AssertionRemembered(ctx, key, now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if found("k1", at(0)) {
		t.Fatal("an unknown key was found")
	}
	if !remember(t, s, "k1", at(300), at(0)) {
		t.Fatal("AssertionRemembered recorded the key it looked for")
	}
	if !found("k1", at(299)) {
		t.Error("a live key was not found")
	}
	if found("k1", at(300)) {
		t.Error("an expired key was found")
	}
}

func remember(t *testing.T, s berth.AssertionStore, key string, expires, now time.Time) bool {
	t.Helper()
	first, err := s.RememberAssertion(context.Background(), key, expires, now)
	if err != nil {
		t.Fatalf("RememberAssertion(%s): %v", key, err)
	}
	return first
}

func testRememberAssertionOnce(t *testing.T, s berth.MetadataStore) {
	if !remember(t, s, "k1", at(300), at(0)) {
		t.Fatal("a new key was not recorded")
	}
	if remember(t, s, "k1", at(300), at(10)) {
		t.Error("a live key was recorded twice")
	}
	if !remember(t, s, "k2", at(300), at(10)) {
		t.Error("another key was refused")
	}
}

func testRememberAssertionAfterExpiry(t *testing.T, s berth.MetadataStore) {
	remember(t, s, "k", at(60), at(0))
	if remember(t, s, "k", at(400), at(59)) {
		t.Error("recorded again before it expired")
	}
	if !remember(t, s, "k", at(400), at(60)) {
		t.Fatal("not recorded again once expired")
	}
	if remember(t, s, "k", at(500), at(300)) {
		t.Error("the renewed record was not kept until its new expiry")
	}
}

func testRememberAssertionRace(t *testing.T, s berth.MetadataStore) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 8 {
		wg.Go(func() {
			first, err := s.RememberAssertion(context.Background(), "raced", at(300), at(0))
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Errorf("%d of 8 racing callers recorded the key, want 1", firsts)
	}
}

func testDeleteExpiredAssertions(t *testing.T, s berth.MetadataStore) {
	remember(t, s, "old", at(10), at(0))
	remember(t, s, "edge", at(20), at(0))
	remember(t, s, "new", at(30), at(0))
	n, err := s.DeleteExpiredAssertions(context.Background(), at(20))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredAssertions: %d, %v; want 1", n, err)
	}
	// Deleting an expired key changes nothing a caller can see; a live one
	// is still refused.
	if remember(t, s, "edge", at(100), at(15)) || remember(t, s, "new", at(100), at(15)) {
		t.Error("a live key was lost")
	}
}
