package bounded

import "sync"

// DefaultMax is a Map's bound when Max is not positive.
const DefaultMax = 4096

// Map is a map of at most Max entries, safe for concurrent use; past the
// bound, adding an entry drops the oldest added. Its zero value is ready.
type Map[K comparable, V any] struct {
	// Max bounds the entries (DefaultMax when not positive). Set it before
	// the first Put.
	Max int

	mu    sync.Mutex
	m     map[K]V
	order []K // ring of the keys in insertion order
	used  int // slots of order written so far (they fill from 0)
	next  int // where order is written next
}

// Put sets k's value. A new key takes the place of the oldest once the map
// is full; a key already there keeps its place.
func (b *Map[K, V]) Put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		n := b.Max
		if n <= 0 {
			n = DefaultMax
		}
		b.m = make(map[K]V)
		b.order = make([]K, n)
	}
	if _, ok := b.m[k]; !ok {
		if b.used < len(b.order) {
			b.used++
		} else {
			// The oldest key, or one deleted since: deleting it is then a
			// no-op, or drops an entry Put again since, early (a read
			// for its caller, no more).
			delete(b.m, b.order[b.next])
		}
		b.order[b.next] = k
		b.next = (b.next + 1) % len(b.order)
	}
	b.m[k] = v
}

// Get returns k's value, if the map holds it.
func (b *Map[K, V]) Get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

// Delete drops k.
func (b *Map[K, V]) Delete(k K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, k)
}

// Len returns how many entries the map holds.
func (b *Map[K, V]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
