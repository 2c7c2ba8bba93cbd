package s3

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// The memo answers only for the key and ETag it was told, keeps a copy of
// the state (the hash it was given may go on), forgets an upload's objects,
// and past memoEntries forgets the oldest first.
func TestStateMemo(t *testing.T) {
	var m stateMemo
	h := sha256.New()
	h.Write([]byte("first chunk"))
	want := fmt.Sprintf("%x", h.Sum(nil))
	m.remember("uploads/a/data/0", "etag-a", h)
	h.Write([]byte("more"))
	got := m.recall("uploads/a/data/0", "etag-a")
	if got == nil || fmt.Sprintf("%x", got.Sum(nil)) != want {
		t.Fatalf("recall = %v, want the state after the first chunk", got)
	}
	if m.recall("uploads/a/data/0", "another-etag") != nil {
		t.Error("recall under another ETag found a state")
	}
	m.forget(upload{segs: []segment{{key: "uploads/a/data/0", etag: "etag-a"}}})
	if m.recall("uploads/a/data/0", "etag-a") != nil {
		t.Error("recall after forget found a state")
	}
	for i := range memoEntries + 1 {
		m.remember(fmt.Sprintf("k%d", i), "e", h)
	}
	if m.recall("k0", "e") != nil {
		t.Error("the oldest of memoEntries+1 states is still remembered")
	}
	if m.recall("k1", "e") == nil || m.recall(fmt.Sprintf("k%d", memoEntries), "e") == nil {
		t.Error("a state among the newest memoEntries was forgotten")
	}
	if n := m.entries.Len(); n != memoEntries {
		t.Errorf("%d states remembered, want %d", n, memoEntries)
	}
}
