package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

const (
	dataFile  = "data"
	stateFile = "sha256"
)

func (s *Store) uploadDir(id string) string { return filepath.Join(s.uploads, id) }

// CreateUpload starts an empty upload. An id that is not 1 to 64 characters of
// [A-Za-z0-9-] is blob_upload_invalid; an id in use is conflict.
func (s *Store) CreateUpload(ctx context.Context, id string) error {
	if !berth.ValidUploadID(id) {
		return berth.UploadIDInvalid(id)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	dir := s.uploadDir(id)
	if err := os.Mkdir(dir, dirPerm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return berth.Errorf(berth.CodeConflict, "upload %s exists", id)
		}
		return fmt.Errorf("create upload %s: %w", id, err)
	}
	// A crash before the data file exists leaves a directory that no operation
	// treats as an upload and CleanTemp removes. Neither directory is synced:
	// an upload is no promise (the client stores nothing until it commits),
	// so one lost to a power loss is blob_upload_unknown and the client starts
	// it again, while the blob an upload becomes is made durable by its own
	// fsyncs (the data's, then blobs/ALG/XX's once it is renamed there).
	f, err := os.OpenFile(filepath.Join(dir, dataFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("create upload %s: %w", id, err)
	}
	return nil
}

// StatUpload returns the upload's size, or blob_upload_unknown.
func (s *Store) StatUpload(ctx context.Context, id string) (berth.UploadInfo, error) {
	if !berth.ValidUploadID(id) {
		return berth.UploadInfo{}, berth.UploadUnknown(id)
	}
	fi, err := os.Stat(filepath.Join(s.uploadDir(id), dataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return berth.UploadInfo{}, berth.UploadUnknown(id)
	}
	if err != nil {
		return berth.UploadInfo{}, fmt.Errorf("stat upload %s: %w", id, err)
	}
	return berth.UploadInfo{ID: id, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// AppendUpload writes r's bytes at offset, which must be the upload's size
// (or berth.AppendAtEnd), else range_invalid. It hashes the bytes as it writes them, fsyncs the data file, then
// keeps the sha256 state for the new size, in memory and, from stateFileMin bytes,
// in a file. On failure it truncates the upload back
// to offset, so the upload and its saved state still agree; r's error is returned
// in the chain.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	if !berth.ValidUploadID(id) {
		return 0, berth.UploadUnknown(id)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	dir := s.uploadDir(id)
	f, err := os.OpenFile(filepath.Join(dir, dataFile), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, berth.UploadUnknown(id)
	}
	if err != nil {
		return 0, fmt.Errorf("append to upload %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("append to upload %s: %w", id, err)
	}
	size := fi.Size()
	if offset == berth.AppendAtEnd {
		offset = size
	}
	if offset != size {
		return size, berth.Errorf(berth.CodeRangeInvalid, "upload %s holds %d bytes, so the next chunk starts at %d, not %d", id, size, size, offset).
			WithHint("ask for the upload's status and resume from the offset it reports").
			WithDetail("size", size)
	}
	h, err := s.sha256State(ctx, id, f, size)
	if err != nil {
		return size, fmt.Errorf("append to upload %s: %w", id, err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return size, fmt.Errorf("append to upload %s: %w", id, err)
	}
	n, err := copyHashed(ctx, f, size, h, r)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(size); terr != nil {
			// The saved state no longer matches the data's size, so the next
			// append or commit hashes the data again.
			err = errors.Join(err, terr)
		}
		return size, fmt.Errorf("append to upload %s at %d: %w", id, size, err)
	}
	size += n
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return size, fmt.Errorf("append to upload %s: save hash state: %w", id, err)
	}
	s.states.put(id, size, state)
	if size >= s.stateFileMin {
		if err := saveSHA256State(dir, size, state); err != nil {
			return size, fmt.Errorf("append to upload %s: %w", id, err)
		}
	}
	return size, nil
}

// CommitUpload verifies the upload against d and renames its data into the blob
// store. A sha256 digest is checked against the saved hash state without reading
// the data; any other algorithm, or a state saved for another size, hashes the
// data again. On a mismatch it returns digest_invalid and the upload is untouched.
func (s *Store) CommitUpload(ctx context.Context, id string, d berth.Digest) (berth.BlobInfo, error) {
	if !berth.ValidUploadID(id) {
		return berth.BlobInfo{}, berth.UploadUnknown(id)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	dir := s.uploadDir(id)
	f, err := os.Open(filepath.Join(dir, dataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return berth.BlobInfo{}, berth.UploadUnknown(id)
	}
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	defer f.Close()
	d, err = parseDigest(d)
	if err != nil {
		return berth.BlobInfo{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	size := fi.Size()
	var h hash.Hash
	if d.Algorithm() == berth.SHA256 {
		if h = s.states.get(id, size); h == nil {
			h = readSHA256State(dir, size)
		}
	}
	// A state for all the data was kept by the append that wrote its last
	// bytes, after that append's fsync, and the data only ever grows through
	// such appends: it is durable already.
	synced := h != nil
	if h == nil {
		h = berth.NewHash(d.Algorithm())
		if err := hashFile(ctx, h, f, size); err != nil {
			return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
		}
	}
	if err := berth.VerifyDigest(d, berth.DigestFromHash(d.Algorithm(), h)); err != nil {
		return berth.BlobInfo{}, err
	}
	// Without a saved state, this covers data written before a crash whose
	// append never finished.
	if !synced {
		if err := f.Sync(); err != nil {
			return berth.BlobInfo{}, fmt.Errorf("commit upload %s: sync: %w", id, err)
		}
	}
	f.Close()

	// Take the whole upload out of uploads/ first, so that no instant shows the
	// blob and the upload both, and a crash between the renames leaves only a
	// directory in tmp/. Touch it so that CleanTemp sees it as fresh there.
	now := time.Now()
	if err := os.Chtimes(dir, now, now); err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	moved := s.tmpName("commit", id)
	if err := os.Rename(dir, moved); err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	info, err := s.moveIntoPlace(filepath.Join(moved, dataFile), d)
	if err != nil {
		if rerr := os.Rename(moved, dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s as %s: %w", id, d, err)
	}
	s.states.drop(id)
	// What is left is the hash state, in tmp/: CleanTemp removes it if this fails.
	_ = os.RemoveAll(moved)
	return info, nil
}

// DeleteUpload removes the upload. Deleting an absent upload is not an error; an
// invalid id is blob_upload_unknown.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if !berth.ValidUploadID(id) {
		return berth.UploadUnknown(id)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	// Rename first: a crash during the removal leaves debris in tmp/, never a
	// half-deleted upload.
	s.states.drop(id)
	moved := s.tmpName("delete", id)
	err := os.Rename(s.uploadDir(id), moved)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = os.RemoveAll(moved)
	}
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// WalkUploads calls fn for every unfinished upload; an error from fn stops the
// walk and is returned. Uploads committed or deleted while it runs are skipped.
func (s *Store) WalkUploads(ctx context.Context, fn func(berth.UploadInfo) error) error {
	var fnErr error
	err := walkDir(s.uploads, func(e fs.DirEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := e.Name()
		if !e.IsDir() || !berth.ValidUploadID(id) {
			return nil
		}
		fi, err := os.Stat(filepath.Join(s.uploads, id, dataFile))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		fnErr = fn(berth.UploadInfo{ID: id, Size: fi.Size(), ModTime: fi.ModTime()})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("walk uploads: %w", err)
	}
	return nil
}

// The sha256 state file holds, after a magic, the size of the data it was
// computed over, a CRC-32 of the marshaled state, and the state. It is written
// without fsync: a state lost or torn by a crash fails its checks, a state older
// than the data has another size, and either way the data is hashed again. Data
// only ever grows past a saved state, or is truncated back to it, so a state
// whose size matches the data's describes exactly those bytes.
var stateMagic = []byte("bsh1")

const stateHeader = 4 + 8 + 4

func saveSHA256State(dir string, size int64, state []byte) error {
	b := make([]byte, 0, stateHeader+len(state))
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(state))
	b = append(b, state...)
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, filePerm); err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	return nil
}

// readSHA256State returns the saved sha256 state when it is intact and was saved
// for size bytes, else nil.
func readSHA256State(dir string, size int64) hash.Hash {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil || len(b) < stateHeader || !bytes.Equal(b[:4], stateMagic) {
		return nil
	}
	if int64(binary.BigEndian.Uint64(b[4:12])) != size {
		return nil
	}
	state := b[stateHeader:]
	if crc32.ChecksumIEEE(state) != binary.BigEndian.Uint32(b[12:16]) {
		return nil
	}
	return unmarshalSHA256(state)
}

func unmarshalSHA256(state []byte) hash.Hash {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil
	}
	return h
}

// stateFileMin is a Store's default stateFileMin: hashing 4 MiB again after a
// restart takes a few milliseconds.
const stateFileMin = 4 << 20

// hashStates are the sha256 states of the uploads this process appended to,
// each for the size its data had after the append that kept it.
type hashStates struct {
	mu sync.Mutex
	m  map[string]keptState
}

type keptState struct {
	size  int64
	state []byte // a marshaled sha256 state
}

func (k *hashStates) put(id string, size int64, state []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]keptState{}
	}
	k.m[id] = keptState{size, state}
}

// get returns the state kept for upload id when it was kept for size bytes.
func (k *hashStates) get(id string, size int64) hash.Hash {
	k.mu.Lock()
	st, ok := k.m[id]
	k.mu.Unlock()
	if !ok || st.size != size {
		return nil
	}
	return unmarshalSHA256(st.state)
}

func (k *hashStates) drop(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, id)
}

// sha256State returns the sha256 state after the first size bytes of upload
// id's data f: the one kept in memory or saved when it fits, else computed by
// reading them.
func (s *Store) sha256State(ctx context.Context, id string, f *os.File, size int64) (hash.Hash, error) {
	if h := s.states.get(id, size); h != nil {
		return h, nil
	}
	if h := readSHA256State(s.uploadDir(id), size); h != nil {
		return h, nil
	}
	h := sha256.New()
	if err := hashFile(ctx, h, f, size); err != nil {
		return nil, err
	}
	return h, nil
}

// hashFile feeds the first size bytes of f to h.
func hashFile(ctx context.Context, h hash.Hash, f *os.File, size int64) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(err == io.EOF && off == size) {
			return fmt.Errorf("hash upload data: %w", err)
		}
	}
	return nil
}

// uploadLocks serialises operations on one upload within the process, so that
// two appends at the same offset cannot both pass the offset check.
type uploadLocks struct {
	mu sync.Mutex
	m  map[string]*uploadLock
}

type uploadLock struct {
	sync.Mutex
	refs int
}

func (l *uploadLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*uploadLock{}
	}
	e := l.m[id]
	if e == nil {
		e = &uploadLock{}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}
