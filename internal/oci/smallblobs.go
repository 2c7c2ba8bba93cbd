package oci

import (
	"container/list"
	"context"
	"io"
	"sync"

	"github.com/berth-dev/berth"
)

// SmallBlobs keeps the bytes of small blobs in memory, by digest, bounded
// in total size with the least recently served evicted first, so that a
// GET of a config or a small layer costs no request to a remote blob store.
// A blob's bytes never change under its digest, so nothing is ever stale;
// an entry of a blob that was deleted is only memory, never served, since a
// GET is answered only for a blob its repository links. Safe for concurrent
// use; a nil *SmallBlobs keeps nothing.
type SmallBlobs struct {
	// MaxBlob is the largest blob kept; MaxTotal bounds all of them.
	MaxBlob, MaxTotal int64

	mu    sync.Mutex
	order *list.List // front: most recently served
	items map[berth.Digest]*list.Element
	total int64
}

type smallBlob struct {
	d berth.Digest
	b []byte
}

// get returns d's bytes and true when they are kept.
func (c *SmallBlobs) get(d berth.Digest) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[d]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*smallBlob).b, true
}

// put keeps b as d's bytes, evicting the least recently served as needed.
func (c *SmallBlobs) put(d berth.Digest, b []byte) {
	if c == nil || int64(len(b)) > c.MaxBlob || int64(len(b)) > c.MaxTotal {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items, c.order = map[berth.Digest]*list.Element{}, list.New()
	}
	if _, ok := c.items[d]; ok {
		return
	}
	c.items[d] = c.order.PushFront(&smallBlob{d, b})
	c.total += int64(len(b))
	for c.total > c.MaxTotal {
		last := c.order.Back()
		sb := last.Value.(*smallBlob)
		c.order.Remove(last)
		delete(c.items, sb.d)
		c.total -= int64(len(sb.b))
	}
}

// openSmall returns the bytes of blob d of the given size: from memory when
// kept, else read whole from the blob store (verified against d) and kept.
// ok is false when d is not small enough to keep; the caller opens it. The
// bytes may be shared with other requests: never write to them.
func (h *Handler) openSmall(ctx context.Context, d berth.Digest, size int64) (blob []byte, ok bool, err error) {
	if h.SmallBlobs == nil || size > h.SmallBlobs.MaxBlob {
		return nil, false, nil
	}
	if b, ok := h.SmallBlobs.get(d); ok {
		return b, true, nil
	}
	rc, _, err := h.Blobs.Open(ctx, d)
	if err != nil {
		return nil, true, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, true, err
	}
	if int64(len(b)) != size {
		// The store holds another size than the link says: not ours to
		// answer from memory under a Content-Length of size.
		return nil, false, nil
	}
	// What is kept is served to every later client: keep only what hashes
	// to its digest.
	if berth.VerifyDigest(d, berth.DigestOf(d.Algorithm(), b)) == nil {
		h.SmallBlobs.put(d, b)
	}
	return b, true, nil
}
