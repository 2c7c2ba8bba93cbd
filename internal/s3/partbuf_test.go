package s3

import "testing"

// TestPartBuffers: every buffer has the part size; the first residentParts
// in use at once are the resident ones, handed out again after put, and a
// buffer beyond them never becomes resident.
func TestPartBuffers(t *testing.T) {
	const size = 1 << 20
	p := newPartBuffers(size)
	var got []*[]byte
	for range residentParts + 2 {
		b := p.get()
		if len(*b) != size {
			t.Fatalf("buffer of %d bytes, want %d", len(*b), size)
		}
		(*b)[0], (*b)[size-1] = 1, 2 // writable end to end
		got = append(got, b)
	}
	if len(p.resident) > residentParts {
		t.Fatalf("%d resident buffers, at most %d", len(p.resident), residentParts)
	}
	for _, b := range got {
		p.put(b)
	}
	if len(p.free) != len(p.resident) {
		t.Fatalf("%d resident buffers free after every put, want %d", len(p.free), len(p.resident))
	}
	seen := map[*[]byte]bool{}
	for range len(p.resident) {
		b := p.get()
		if seen[b] {
			t.Fatal("one buffer handed out twice")
		}
		seen[b] = true
		found := false
		for _, r := range p.resident {
			found = found || r == b
		}
		if !found {
			t.Fatal("a free resident buffer was not reused")
		}
	}
}
