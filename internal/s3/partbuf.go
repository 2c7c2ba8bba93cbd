package s3

import "sync"

// residentParts is how many part buffers of one size the process keeps
// outside the Go heap: enough for one large write reading a part while it
// sends another, and a second one doing the same.
const residentParts = 4

// partBuffers hands out the part buffers of multipart writes and assemblies.
// The first residentParts are mapped outside the Go heap (where the platform
// allows) and reused for the life of the process (see partBuffersOf):
// buffers on the heap count towards the garbage collector's goal, which lets
// the heap grow to twice what is live, so two 8 MiB parts in flight raised a
// push's peak RSS by about 32 MiB more than their size, and a buffer the
// collector took from a sync.Pool between two parts was allocated again.
// Buffers beyond those come from the heap, through a sync.Pool. A resident
// buffer is never unmapped: a request that failed may still be reading it,
// as a pooled heap buffer may be.
type partBuffers struct {
	size int64

	mu       sync.Mutex
	free     []*[]byte // resident buffers not in use
	resident []*[]byte // every resident buffer
	heap     sync.Pool
}

func newPartBuffers(size int64) *partBuffers {
	p := &partBuffers{size: size}
	p.heap.New = func() any { b := make([]byte, size); return &b }
	return p
}

// sharedParts holds the process's part buffers by part size: Stores of one
// size share them, so that the resident buffers, never unmapped, stay at
// residentParts per size however many Stores a process opens (tests open
// dozens).
var sharedParts struct {
	mu sync.Mutex
	m  map[int64]*partBuffers
}

// partBuffersOf returns the process's part buffers of the given size.
func partBuffersOf(size int64) *partBuffers {
	sharedParts.mu.Lock()
	defer sharedParts.mu.Unlock()
	p := sharedParts.m[size]
	if p == nil {
		if sharedParts.m == nil {
			sharedParts.m = map[int64]*partBuffers{}
		}
		p = newPartBuffers(size)
		sharedParts.m[size] = p
	}
	return p
}

// get returns a buffer of the part size.
func (p *partBuffers) get() *[]byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	if len(p.resident) < residentParts {
		if b, ok := mapBuffer(p.size); ok {
			p.resident = append(p.resident, &b)
			p.mu.Unlock()
			return &b
		}
	}
	p.mu.Unlock()
	return p.heap.Get().(*[]byte)
}

// put returns a buffer that get handed out.
func (p *partBuffers) put(b *[]byte) {
	p.mu.Lock()
	for _, r := range p.resident {
		if r == b {
			p.free = append(p.free, b)
			p.mu.Unlock()
			return
		}
	}
	p.mu.Unlock()
	p.heap.Put(b)
}
