package bounded_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/bounded"
)

// A Map holds at most Max entries and drops the oldest added first; a key
// put again keeps its place, and a deleted key frees nothing early.
func TestMapBound(t *testing.T) {
	m := bounded.Map[int, string]{Max: 3}
	for i := range 3 {
		m.Put(i, "v")
	}
	m.Put(0, "again") // keeps its place: still the oldest
	m.Put(3, "v")
	if _, ok := m.Get(0); ok {
		t.Error("the oldest key survived a fourth")
	}
	for _, k := range []int{1, 2, 3} {
		if _, ok := m.Get(k); !ok {
			t.Errorf("key %d dropped", k)
		}
	}
	m.Delete(2)
	if _, ok := m.Get(2); ok || m.Len() != 2 {
		t.Errorf("after Delete: %d entries", m.Len())
	}
	for i := 10; i < 100; i++ {
		m.Put(i, "v")
		if m.Len() > 3 {
			t.Fatalf("%d entries, bound 3", m.Len())
		}
	}
	if v, ok := m.Get(99); !ok || v != "v" {
		t.Error("the newest key is gone")
	}
}

// The zero Map is ready, bounded by DefaultMax.
func TestMapZero(t *testing.T) {
	var m bounded.Map[string, int]
	for i := range bounded.DefaultMax + 10 {
		m.Put(string(rune(i+1000)), i)
	}
	if m.Len() != bounded.DefaultMax {
		t.Errorf("%d entries, want %d", m.Len(), bounded.DefaultMax)
	}
}
