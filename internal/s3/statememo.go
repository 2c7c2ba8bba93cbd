package s3

import (
	"crypto/sha256"
	"encoding"
	"hash"

	"github.com/berth-dev/berth/internal/bounded"
)

// stateMemo remembers, for the data objects this Store wrote lately, the
// sha256 state after each one's end: the state a saved state object holds,
// without the request that would save or read one. An entry is named by the
// data object's key and the ETag its creation returned, and is used only
// while a listing shows that object with that ETag: data objects are created
// only where none exists and never replaced, so the chain of objects before
// it is the one that was hashed (as for saved states). A commit or an append
// on the replica that wrote the previous chunk, which is every one on a
// single replica, then reads neither the data nor a state; on another
// replica it finds no entry and does as before.
//
// Entries are forgotten with their upload (commit, DeleteUpload) and, past
// memoEntries, oldest first; losing one costs a read, never a wrong digest.
type stateMemo struct {
	entries bounded.Map[memoKey, []byte] // marshaled sha256 states
}

// memoEntries bounds the memo: about 200 bytes each.
const memoEntries = bounded.DefaultMax

type memoKey struct{ key, etag string }

// remember records h, the state after the data object key with etag. It
// keeps a copy: h may go on hashing.
func (m *stateMemo) remember(key, etag string, h hash.Hash) {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil || etag == "" {
		return
	}
	m.entries.Put(memoKey{key, etag}, state)
}

// recall returns a new hash in the state remembered after key with etag, or
// nil.
func (m *stateMemo) recall(key, etag string) hash.Hash {
	state, ok := m.entries.Get(memoKey{key, etag})
	if !ok {
		return nil
	}
	h := sha256.New()
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) != nil {
		return nil
	}
	return h
}

// forget drops what is remembered of u's data objects.
func (m *stateMemo) forget(u upload) {
	for _, sg := range u.segs {
		m.entries.Delete(memoKey{sg.key, sg.etag})
	}
}
