package disk

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
)

var (
	_ berth.BlobStore   = (*Store)(nil)
	_ berth.UploadStore = (*Store)(nil)
)

const (
	dirPerm  = 0o700 // content is access-controlled by berth, not by the file system
	filePerm = 0o600

	bufferSize      = 1 << 20
	smallBufferSize = 64 << 10
)

// algorithms are the digest algorithms a blob may be stored under, each a
// directory under blobs/.
var algorithms = []string{berth.SHA256, berth.SHA512}

// Store is a blob store and upload store in a local directory.
type Store struct {
	root    string
	blobs   string
	uploads string
	tmp     string

	locks uploadLocks
	// states holds the sha256 state of each upload this process appended
	// to, so that a commit reads no state file; stateFileMin is the size
	// from which the state is saved in a file too, for a process that
	// continues the upload after a restart (below it, hashing the data again
	// then costs less than a file per append).
	states       hashStates
	stateFileMin int64
	// fanout holds the blobs/ALG/XX directories known to exist (made, or
	// found, by this process): a commit into one skips the mkdir. The
	// store never removes them; if something else did, the rename fails
	// and the directory is made again.
	fanout sync.Map
}

// New opens the store rooted at root, creating its directories when needed.
func New(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob store root %s: %w", root, err)
	}
	s := &Store{
		root:    root,
		blobs:   filepath.Join(root, "blobs"),
		uploads: filepath.Join(root, "uploads"),
		tmp:     filepath.Join(root, "tmp"),

		stateFileMin: stateFileMin,
	}
	dirs := []string{s.uploads, s.tmp}
	for _, alg := range algorithms {
		dirs = append(dirs, filepath.Join(s.blobs, alg))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return nil, fmt.Errorf("create blob store directory: %w", err)
		}
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// blobPath returns the path of d, which must have come from berth.ParseDigest.
func (s *Store) blobPath(d berth.Digest) string {
	enc := d.Encoded()
	return filepath.Join(s.blobs, d.Algorithm(), enc[:2], enc)
}

// parseDigest validates d before it becomes a path.
func parseDigest(d berth.Digest) (berth.Digest, error) {
	return berth.ParseDigest(string(d))
}

func blobUnknown(d berth.Digest) error {
	return berth.Errorf(berth.CodeBlobUnknown, "blob %s is not stored", d.Short())
}

// Stat returns blob_unknown when d is not stored.
func (s *Store) Stat(ctx context.Context, d berth.Digest) (berth.BlobInfo, error) {
	d, err := parseDigest(d)
	if err != nil {
		return berth.BlobInfo{}, err
	}
	fi, err := os.Stat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return berth.BlobInfo{}, blobUnknown(d)
	}
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return berth.BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open returns the blob's file, or blob_unknown. The reader is an *os.File, so
// copying it to a network connection can use sendfile.
func (s *Store) Open(ctx context.Context, d berth.Digest) (io.ReadSeekCloser, berth.BlobInfo, error) {
	d, err := parseDigest(d)
	if err != nil {
		return nil, berth.BlobInfo{}, err
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, berth.BlobInfo{}, blobUnknown(d)
	}
	if err != nil {
		return nil, berth.BlobInfo{}, fmt.Errorf("open blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, berth.BlobInfo{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return f, berth.BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Put writes r to a temp file while hashing it, checks size and digest, fsyncs the
// file, renames it into place and fsyncs the directory. On any failure the temp
// file is removed and nothing is stored; r's error is returned in the chain.
//
// Where the file system supports it, the file is written with direct I/O
// (O_DIRECT), past the page cache: a blob put is mostly one fetched from an
// upstream that is streamed to its client at the same time, and filling the
// page cache with a new blob costs more than the disk write itself where new
// memory is dear (in a VM whose host takes back the guest's free pages, each
// new page of the cache faults on the host: 256 MiB took about a second, while
// the direct write took a fifth of that). The first read of the blob then comes
// from the disk rather than the cache.
//
// When r is a berth.VerifiedReader, Put calls its Verified once r was read
// whole and matched the size and digest, before the fsyncs (on ext4 an
// fsync waits for a journal commit, which may wait for what other
// processes wrote: 5 to 200 ms on a shared machine).
func (s *Store) Put(ctx context.Context, d berth.Digest, size int64, r io.Reader) (berth.BlobInfo, error) {
	src := r
	d, err := parseDigest(d)
	if err != nil {
		return berth.BlobInfo{}, err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: %w", d, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	_ = setDirect(f, true) // else through the page cache

	h := berth.NewHash(d.Algorithm())
	// Read one byte more than declared, to notice a longer body without
	// storing all of it.
	limit := int64(-1)
	if size >= 0 {
		limit = size + 1
	}
	var n int64
	if wt, ok := r.(io.WriterTo); ok && isDirect(f) {
		n, err = copyHashedFrom(ctx, f, h, wt, limit)
	} else {
		if limit >= 0 {
			r = io.LimitReader(r, limit)
		}
		n, err = copyHashed(ctx, f, 0, h, r)
	}
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: %w", d, err)
	}
	if size >= 0 && n != size {
		return berth.BlobInfo{}, sizeInvalid(d, size, n)
	}
	if err := berth.VerifyDigest(d, berth.DigestFromHash(d.Algorithm(), h)); err != nil {
		return berth.BlobInfo{}, err
	}
	if v, ok := src.(berth.VerifiedReader); ok {
		v.Verified()
	}
	if err := f.Sync(); err != nil {
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: sync: %w", d, err)
	}
	if err := f.Close(); err != nil {
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: close: %w", d, err)
	}
	f = nil
	info, err := s.moveIntoPlace(tmp, d)
	if err != nil {
		os.Remove(tmp)
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: %w", d, err)
	}
	return info, nil
}

// sizeInvalid reports a body whose length differs from the declared size; a
// longer body was read only up to one byte past the declared size.
func sizeInvalid(d berth.Digest, declared, got int64) error {
	sent := fmt.Sprintf("%d were sent", got)
	if got > declared {
		sent = "more were sent"
	}
	return berth.Errorf(berth.CodeSizeInvalid, "blob %s was declared as %d bytes but %s", d.Short(), declared, sent).
		WithHint("declare the length of the exact bytes the digest was computed from")
}

// moveIntoPlace renames the complete, synced file at src to d's path and syncs
// the directory that now holds it. Renaming over an existing blob replaces it
// with the same bytes, so concurrent writers of one digest are safe.
func (s *Store) moveIntoPlace(src string, d berth.Digest) (berth.BlobInfo, error) {
	dst := s.blobPath(d)
	dir := filepath.Dir(dst)
	_, known := s.fanout.Load(dir)
	if !known {
		if err := ensureDir(dir); err != nil {
			return berth.BlobInfo{}, err
		}
		s.fanout.Store(dir, struct{}{})
	}
	err := os.Rename(src, dst)
	if known && errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(src); serr == nil { // the directory went away
			s.fanout.Delete(dir)
			if err := ensureDir(dir); err != nil {
				return berth.BlobInfo{}, err
			}
			s.fanout.Store(dir, struct{}{})
			err = os.Rename(src, dst)
		}
	}
	if err != nil {
		return berth.BlobInfo{}, err
	}
	if err := syncDir(dir); err != nil {
		return berth.BlobInfo{}, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return berth.BlobInfo{}, err
	}
	return berth.BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes d. Deleting an absent blob is not an error. The fan-out
// directory stays: a concurrent Put may be about to rename into it.
func (s *Store) Delete(ctx context.Context, d berth.Digest) error {
	d, err := parseDigest(d)
	if err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every stored blob. It reads only blobs/, so files being
// written (in tmp/) are never reported, and it skips names that are not digests
// and entries deleted while it runs.
func (s *Store) Walk(ctx context.Context, fn func(berth.BlobInfo) error) error {
	for _, alg := range algorithms {
		algDir := filepath.Join(s.blobs, alg)
		prefixes, err := readDirNames(algDir)
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, prefix := range prefixes {
			if len(prefix) != 2 || !isLowerHex(prefix) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var fnErr error
			err := walkDir(filepath.Join(algDir, prefix), func(e fs.DirEntry) error {
				d, err := berth.ParseDigest(alg + ":" + e.Name())
				if err != nil || d.Encoded()[:2] != prefix || !e.Type().IsRegular() {
					return nil
				}
				fi, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					return nil // deleted since the directory was read
				}
				if err != nil {
					return err
				}
				fnErr = fn(berth.BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()})
				return fnErr
			})
			if fnErr != nil {
				return fnErr
			}
			if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
		}
	}
	return nil
}

// CleanTemp removes what a crash or a kill left behind and was last modified
// before olderThan: files and directories in tmp/, and upload directories that
// hold no data file. Garbage collection calls it with a cutoff well in the past,
// so that files still being written are left alone.
func (s *Store) CleanTemp(olderThan time.Time) error {
	var errs []error
	err := walkDir(s.tmp, func(e fs.DirEntry) error {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(olderThan) {
			return nil
		}
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	err = walkDir(s.uploads, func(e fs.DirEntry) error {
		dir := filepath.Join(s.uploads, e.Name())
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(olderThan) {
			return nil
		}
		if _, err := os.Lstat(filepath.Join(dir, dataFile)); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean temporary files: %w", err)
	}
	return nil
}

// copyHashed copies r to the end of f, which is at offset off, and to h. It
// fills each buffer before it is used, so that a body arriving in small
// reads still costs few system calls, and works in two stages: while one
// buffer is written to f, the next is read and hashed. The first buffer is
// small (smallBufferSize), which most blobs fit, so that many small pushes
// at once do not each hold two of bufferSize; a body that fills it goes on
// in two large buffers, the small one retired when it comes back. Every
// writebackEvery bytes it asks the kernel to start writing back what was
// written, so that the final fsync has little left to do; with direct I/O
// on for f (setDirect), there is nothing to write back, and the last piece
// of the data, which direct I/O cannot take when its length is not aligned,
// goes through the page cache. It stops with ctx's error when ctx is done.
// It returns the bytes read from r; when it returns an error, any prefix of
// them may have been written.
func copyHashed(ctx context.Context, f *os.File, off int64, h hash.Hash, r io.Reader) (int64, error) {
	small := smallBuffers.Get().(*[]byte)
	var large []*[]byte
	free := make(chan []byte, 2)
	free <- *small
	full := make(chan []byte, 2) // never blocks: at most two buffers circulate

	var werr error
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		pending := int64(0)
		direct := isDirect(f)
		for b := range full {
			if werr = writeChunk(f, b, &direct); werr != nil {
				return
			}
			pending += int64(len(b))
			if direct {
				// Already on the disk: nothing to start, but the next
				// writeback's range begins after it.
				off += pending
				pending = 0
			} else if pending >= writebackEvery {
				startWriteback(f, off, pending)
				off += pending
				pending = 0
			}
			free <- b[:cap(b)]
		}
	}()
	finish := func(n int64, err error) (int64, error) {
		close(full)
		<-wdone
		smallBuffers.Put(small)
		for _, b := range large {
			buffers.Put(b)
		}
		if err == nil {
			err = werr
		}
		return n, err
	}

	var n int64
	for {
		var buf []byte
		if n > 0 && len(large) == 0 {
			buf = takeLarge(&large)
		} else {
			select {
			case buf = <-free:
			case <-wdone:
				return finish(n, nil) // the writer failed
			}
			if n > 0 && cap(buf) == smallBufferSize {
				buf = takeLarge(&large)
			}
		}
		if err := ctx.Err(); err != nil {
			return finish(n, err)
		}
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			h.Write(buf[:m])
			full <- buf[:m]
			n += int64(m)
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return finish(n, nil)
		default:
			return finish(n, rerr)
		}
	}
}

// takeLarge returns a buffer of bufferSize from the pool, added to held.
func takeLarge(held *[]*[]byte) []byte {
	b := buffers.Get().(*[]byte)
	*held = append(*held, b)
	return *b
}

// copyHashedFrom is copyHashed for a source that hands out its own buffers
// (an io.WriterTo, such as the chunks of a blob the pull-through cache
// streams), to a file with direct I/O on: a piece that direct I/O can take
// as it is (aligned memory, a multiple of directAlign bytes) is hashed
// while it is written, without being copied; other bytes go through an
// aligned buffer, written once full, and the last piece, which direct I/O
// cannot take when its length is not aligned, through the page cache. It
// takes at most limit bytes of src (no limit when limit < 0) and stops there
// without an error, as io.LimitReader would. It stops with ctx's error
// when ctx is done. It returns the bytes taken from src; when it returns an
// error, any prefix of them may have been written.
func copyHashedFrom(ctx context.Context, f *os.File, h hash.Hash, src io.WriterTo, limit int64) (int64, error) {
	w := &hashedFile{ctx: ctx, f: f, h: h, limit: limit, direct: true}
	_, err := src.WriteTo(w)
	if errors.Is(err, errLimit) {
		err = nil
	}
	if err == nil {
		err = w.flush()
	}
	if w.buf != nil {
		buffers.Put(w.buf)
	}
	return w.n, err
}

// errLimit stops the source of a copyHashedFrom at its limit.
var errLimit = errors.New("past the limit")

// hashedFile is the writer copyHashedFrom gives its source.
type hashedFile struct {
	ctx    context.Context
	f      *os.File
	h      hash.Hash
	limit  int64 // < 0: none
	direct bool  // direct I/O is still on for f
	n      int64 // bytes taken
	buf    *[]byte
	fill   int   // bytes in buf
	end    int64 // bytes written to f
	off    int64 // where the bytes not yet handed to writeback begin
}

func (w *hashedFile) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	var over error
	if w.limit >= 0 && int64(len(p)) > w.limit-w.n {
		p, over = p[:w.limit-w.n], errLimit
	}
	taken := 0
	for len(p) > 0 {
		if k := len(p) &^ (directAlign - 1); w.fill == 0 && k > 0 && directAligned(p[:k]) {
			if err := w.write(p[:k]); err != nil {
				return taken, err
			}
			w.n += int64(k)
			taken += k
			p = p[k:]
			continue
		}
		if w.buf == nil {
			w.buf = buffers.Get().(*[]byte)
		}
		m := copy((*w.buf)[w.fill:], p)
		w.fill += m
		w.n += int64(m)
		taken += m
		p = p[m:]
		if w.fill == len(*w.buf) {
			if err := w.flush(); err != nil {
				return taken, err
			}
		}
	}
	return taken, over
}

// flush writes the bytes in w's buffer.
func (w *hashedFile) flush() error {
	if w.fill == 0 {
		return nil
	}
	err := w.write((*w.buf)[:w.fill])
	w.fill = 0
	return err
}

// write hashes b while it writes it to f. Once direct I/O is off (a file
// system that refused it after all), it starts the writeback of every
// writebackEvery bytes, as copyHashed does.
func (w *hashedFile) write(b []byte) error {
	done := make(chan error, 1)
	go func() { done <- writeChunk(w.f, b, &w.direct) }()
	w.h.Write(b)
	if err := <-done; err != nil {
		return err
	}
	w.end += int64(len(b))
	if w.direct {
		w.off = w.end
	} else if w.end-w.off >= writebackEvery {
		startWriteback(w.f, w.off, w.end-w.off)
		w.off = w.end
	}
	return nil
}

// writeChunk writes b at f's offset. With direct I/O on (*direct), a piece that
// direct I/O cannot take (its length or memory not aligned) turns it off for the
// rest of f, as does a file system that refuses a direct write after all.
func writeChunk(f *os.File, b []byte, direct *bool) error {
	if *direct && !directAligned(b) {
		if err := setDirect(f, false); err != nil {
			return err
		}
		*direct = false
	}
	n, err := f.Write(b)
	if err != nil && *direct && errors.Is(err, syscall.EINVAL) {
		if err := setDirect(f, false); err != nil {
			return err
		}
		*direct = false
		_, err = f.Write(b[n:])
	}
	return err
}

// writebackEvery is how many written bytes copyHashed lets accumulate before it
// starts their writeback.
const writebackEvery = 8 << 20

// buffers are aligned for direct I/O.
var buffers = sync.Pool{New: func() any { b := alignedBuffer(bufferSize); return &b }}

// smallBuffers hold a body's first smallBufferSize bytes (see copyHashed),
// aligned as buffers are.
var smallBuffers = sync.Pool{New: func() any { b := alignedBuffer(smallBufferSize); return &b }}

// ensureDir creates dir when it is missing and syncs its parent, so that a blob
// renamed into a new directory survives a crash along with the directory.
func ensureDir(dir string) error {
	err := os.Mkdir(dir, dirPerm)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// readDirNames returns the names in dir, or none when dir does not exist.
func readDirNames(dir string) ([]string, error) {
	var names []string
	err := walkDir(dir, func(e fs.DirEntry) error {
		names = append(names, e.Name())
		return nil
	})
	return names, err
}

// walkDir calls fn for each entry of dir, reading the directory in batches. A
// directory deleted concurrently is empty.
func walkDir(dir string, fn func(fs.DirEntry) error) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func isLowerHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// tmpName returns a fresh name in tmp/ for something being moved out of the way.
func (s *Store) tmpName(kind, id string) string {
	return filepath.Join(s.tmp, kind+"-"+id+"-"+rand.Text())
}
