package berth

import (
	"io"
	"sync"
)

// LockedReader returns r made safe for concurrent reads, for a random source
// that may be a seeded, non-concurrent one in tests.
func LockedReader(r io.Reader) io.Reader { return &lockedReader{r: r} }

type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
