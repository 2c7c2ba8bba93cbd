package blobtest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/berth-dev/berth"
)

// Store is what a blob backend implements: blob bytes by digest and the uploads
// that become them.
type Store interface {
	berth.BlobStore
	berth.UploadStore
}

// Run runs the suite. newStore must return an empty store that shares nothing
// with any other store it returns, and clean it up through t; subtests run in
// parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"StatUnknown", testStatUnknown},
		{"InvalidDigest", testInvalidDigest},
		{"PutStatOpen", testPutStatOpen},
		{"PutUnknownSize", testPutUnknownSize},
		{"PutEmpty", testPutEmpty},
		{"PutDigestMismatch", testPutDigestMismatch},
		{"PutSizeMismatch", testPutSizeMismatch},
		{"PutReaderError", testPutReaderError},
		{"PutTwice", testPutTwice},
		{"PutConcurrent", testPutConcurrent},
		{"OpenSeek", testOpenSeek},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"WalkStop", testWalkStop},
		{"WalkConcurrentDelete", testWalkConcurrentDelete},
		{"UploadSHA256", func(t *testing.T, s Store) { testUpload(t, s, berth.SHA256) }},
		{"UploadSHA512", func(t *testing.T, s Store) { testUpload(t, s, berth.SHA512) }},
		{"UploadSmallReads", testUploadSmallReads},
		{"UploadEmpty", testUploadEmpty},
		{"UploadWrongOffset", testUploadWrongOffset},
		{"UploadAppendAtEnd", testUploadAppendAtEnd},
		{"UploadAppendError", testUploadAppendError},
		{"UploadConcurrentAppend", testUploadConcurrentAppend},
		{"UploadCommitWrongDigest", testUploadCommitWrongDigest},
		{"UploadCommitExistingBlob", testUploadCommitExistingBlob},
		{"UploadUnknown", testUploadUnknown},
		{"UploadInvalidID", testUploadInvalidID},
		{"UploadsInterleaved", testUploadsInterleaved},
		{"DeleteUpload", testDeleteUpload},
		{"WalkUploads", testWalkUploads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// StatUnknown: Stat and Open return blob_unknown when d is not stored; deleting an
// absent blob is not an error.
func testStatUnknown(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		d := berth.DigestOf(alg, randomBytes(r, 10))
		_, err := s.Stat(ctx, d)
		wantCode(t, err, berth.CodeBlobUnknown, "Stat of an absent %s blob", alg)
		rc, _, err := s.Open(ctx, d)
		if err == nil {
			rc.Close()
		}
		wantCode(t, err, berth.CodeBlobUnknown, "Open of an absent %s blob", alg)
		if err := s.Delete(ctx, d); err != nil {
			t.Errorf("Delete of an absent %s blob: %v, want nil", alg, err)
		}
	}
}

// InvalidDigest: a malformed digest is refused and never reaches storage (it
// could name a path or key outside the store).
func testInvalidDigest(t *testing.T, s Store) {
	ctx := t.Context()
	data := []byte("content")
	bad := []berth.Digest{
		"",
		"sha256",
		"sha256:",
		"sha256:abc",
		"sha256:../../../../../../etc/passwd",
		"sha256:" + berth.Digest(strings.ToUpper(berth.DigestOf(berth.SHA256, data).Encoded())),
		"sha256:" + berth.Digest(strings.Repeat("0", 62)) + "/x",
		berth.Digest("../sha256:" + berth.DigestOf(berth.SHA256, data).Encoded()),
		"md5:9a0364b9e99bb480dd25e1f0284c8555",
	}
	refused := []berth.Code{berth.CodeDigestInvalid, berth.CodeUnsupported}
	lookup := append(refused, berth.CodeBlobUnknown)
	for _, d := range bad {
		_, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data))
		wantCodeIn(t, err, refused, "Put(%q)", d)
		_, err = s.Stat(ctx, d)
		wantCodeIn(t, err, lookup, "Stat(%q)", d)
		rc, _, err := s.Open(ctx, d)
		if err == nil {
			rc.Close()
		}
		wantCodeIn(t, err, lookup, "Open(%q)", d)
		if err := s.Delete(ctx, d); err != nil {
			wantCodeIn(t, err, refused, "Delete(%q)", d)
		}
	}
	wantBlobs(t, s, nil)
}

// PutStatOpen: Put stores r's bytes under d; Stat and Open describe and return them.
func testPutStatOpen(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	want := map[berth.Digest][]byte{}
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		for _, n := range []int{1, 1000, 1<<20 + 17} {
			data := randomBytes(r, n)
			d := berth.DigestOf(alg, data)
			info, err := s.Put(ctx, d, int64(n), bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Put %s (%d bytes): %v", d.Short(), n, err)
			}
			checkInfo(t, "Put", info, d, int64(n))
			info, err = s.Stat(ctx, d)
			if err != nil {
				t.Fatalf("Stat %s: %v", d.Short(), err)
			}
			checkInfo(t, "Stat", info, d, int64(n))
			if got := readBlob(t, s, d); !bytes.Equal(got, data) {
				t.Fatalf("Open %s returned %d bytes that differ from the %d put", d.Short(), len(got), n)
			}
			want[d] = data
		}
	}
	wantBlobs(t, s, want)
}

// PutUnknownSize: a negative size means the length is not declared.
func testPutUnknownSize(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 70_001)
	d := berth.DigestOf(berth.SHA256, data)
	info, err := s.Put(ctx, d, -1, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	checkInfo(t, "Put", info, d, int64(len(data)))
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("Open returned other bytes than were put")
	}
}

// PutEmpty: the empty blob is a blob like any other.
func testPutEmpty(t *testing.T, s Store) {
	ctx := t.Context()
	want := map[berth.Digest][]byte{}
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		d := berth.DigestOf(alg, nil)
		for _, size := range []int64{0, -1} {
			info, err := s.Put(ctx, d, size, bytes.NewReader(nil))
			if err != nil {
				t.Fatalf("Put empty %s blob with size %d: %v", alg, size, err)
			}
			checkInfo(t, "Put", info, d, 0)
		}
		info, err := s.Stat(ctx, d)
		if err != nil {
			t.Fatalf("Stat empty %s blob: %v", alg, err)
		}
		checkInfo(t, "Stat", info, d, 0)
		if got := readBlob(t, s, d); len(got) != 0 {
			t.Fatalf("empty %s blob reads %d bytes", alg, len(got))
		}
		want[d] = nil
	}
	wantBlobs(t, s, want)
}

// PutDigestMismatch: on a mismatch Put returns digest_invalid and stores nothing.
func testPutDigestMismatch(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		data := randomBytes(r, 300_000)
		other := berth.DigestOf(alg, randomBytes(r, 300_000))
		actual := berth.DigestOf(alg, data)
		for _, size := range []int64{int64(len(data)), -1} {
			_, err := s.Put(ctx, other, size, bytes.NewReader(data))
			wantCode(t, err, berth.CodeDigestInvalid, "Put of %s content under another digest, size %d", alg, size)
		}
		wantAbsent(t, s, other)
		wantAbsent(t, s, actual)
	}
	wantBlobs(t, s, nil)
}

// PutSizeMismatch: when size >= 0 and the length differs, size_invalid, and
// nothing is stored.
func testPutSizeMismatch(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 100_000)
	d := berth.DigestOf(berth.SHA256, data)
	n := int64(len(data))
	for _, size := range []int64{0, 1, n - 1, n + 1, 10 * n} {
		_, err := s.Put(ctx, d, size, bytes.NewReader(data))
		wantCode(t, err, berth.CodeSizeInvalid, "Put of %d bytes declared as %d", n, size)
		wantAbsent(t, s, d)
	}
	// The empty blob declared non-empty.
	empty := berth.DigestOf(berth.SHA256, nil)
	_, err := s.Put(ctx, empty, 1, bytes.NewReader(nil))
	wantCode(t, err, berth.CodeSizeInvalid, "Put of 0 bytes declared as 1")
	wantBlobs(t, s, nil)
}

// PutReaderError: a failing reader fails Put with the reader's error in the chain
// (so a caller can tell a client that went away) and stores nothing.
func testPutReaderError(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 3<<20)
	d := berth.DigestOf(berth.SHA256, data)
	errBroken := errors.New("connection reset by the test")
	tooLarge := berth.Errorf(berth.CodeTooLarge, "body over the test's limit")
	for _, readErr := range []error{errBroken, tooLarge} {
		body := io.MultiReader(bytes.NewReader(data[:2<<20+5]), iotest.ErrReader(readErr))
		_, err := s.Put(ctx, d, int64(len(data)), body)
		if !errors.Is(err, readErr) {
			t.Fatalf("Put with a reader failing with %v returned %v, want that error in the chain", readErr, err)
		}
		wantAbsent(t, s, d)
	}
	wantCode(t, func() error {
		_, err := s.Put(ctx, d, -1, io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(tooLarge)))
		return err
	}(), berth.CodeTooLarge, "Put with a reader failing with a berth error")
	wantBlobs(t, s, nil)
}

// PutTwice: putting stored content again succeeds and leaves one blob.
func testPutTwice(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 12_345)
	d := berth.DigestOf(berth.SHA512, data)
	for i := range 2 {
		info, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Put #%d: %v", i+1, err)
		}
		checkInfo(t, "Put", info, d, int64(len(data)))
	}
	wantBlobs(t, s, map[berth.Digest][]byte{d: data})
}

// PutConcurrent: concurrent Puts of the same digest all succeed and leave exactly
// the content, once.
func testPutConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 2<<20+3)
	d := berth.DigestOf(berth.SHA256, data)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Small reads interleave the writers.
			_, errs[i] = s.Put(ctx, d, int64(len(data)), iotest.HalfReader(bytes.NewReader(data)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put #%d: %v", i, err)
		}
	}
	wantBlobs(t, s, map[berth.Digest][]byte{d: data})
}

// OpenSeek: Open returns the blob's content for reading and seeking.
func testOpenSeek(t *testing.T, s Store) {
	ctx := t.Context()
	data := randomBytes(newRand(t), 1<<20+999)
	d := mustPut(t, s, berth.SHA256, data)
	rc, info, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	checkInfo(t, "Open", info, d, int64(len(data)))

	readAt := func(whence int, offset, wantPos int64, n int) {
		t.Helper()
		pos, err := rc.Seek(offset, whence)
		if err != nil {
			t.Fatalf("Seek(%d, %d): %v", offset, whence, err)
		}
		if pos != wantPos {
			t.Fatalf("Seek(%d, %d) = %d, want %d", offset, whence, pos, wantPos)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", n, pos, err)
		}
		if !bytes.Equal(got, data[pos:pos+int64(n)]) {
			t.Fatalf("%d bytes at %d differ from the content put", n, pos)
		}
	}
	mid := int64(len(data) / 2)
	readAt(io.SeekStart, mid, mid, 4096)
	readAt(io.SeekCurrent, 100, mid+4096+100, 10)
	readAt(io.SeekEnd, -10, int64(len(data))-10, 10)
	if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := rc.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("Seek to start: %v", err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(rest, data) {
		t.Fatalf("reading all after seeking to the start: %d bytes, %v", len(rest), err)
	}
}

// Delete removes d; deleting it again is not an error; other blobs stay.
func testDelete(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	keep := randomBytes(r, 500)
	gone := randomBytes(r, 600)
	dk := mustPut(t, s, berth.SHA256, keep)
	dg := mustPut(t, s, berth.SHA512, gone)
	for i := range 2 {
		if err := s.Delete(ctx, dg); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		wantAbsent(t, s, dg)
	}
	wantBlobs(t, s, map[berth.Digest][]byte{dk: keep})
	// A deleted blob can be put again.
	mustPut(t, s, berth.SHA512, gone)
	wantBlobs(t, s, map[berth.Digest][]byte{dk: keep, dg: gone})
}

// Walk calls fn for every stored blob.
func testWalk(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	want := map[berth.Digest][]byte{}
	wantBlobs(t, s, want)
	for i := range 12 {
		alg := berth.SHA256
		if i%3 == 0 {
			alg = berth.SHA512
		}
		data := randomBytes(r, i*1000)
		want[mustPut(t, s, alg, data)] = data
	}
	wantBlobs(t, s, want)
	for d := range want {
		if err := s.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		delete(want, d)
		break
	}
	wantBlobs(t, s, want)
}

// WalkStop: an error from fn stops the walk and is returned.
func testWalkStop(t *testing.T, s Store) {
	r := newRand(t)
	for range 5 {
		mustPut(t, s, berth.SHA256, randomBytes(r, 100))
	}
	errStop := errors.New("stop here")
	calls := 0
	err := s.Walk(t.Context(), func(berth.BlobInfo) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Walk returned %v, want the error fn returned", err)
	}
	if calls != 1 {
		t.Fatalf("fn was called %d times after returning an error, want 1", calls)
	}
}

// WalkConcurrentDelete: blobs deleted while a walk runs (as garbage collection
// does) do not fail the walk. The blobs' digests share their first hex digits, so
// that a backend which lists by prefix (a directory, a listing page) has listed
// the blobs that the first call deletes before it reaches them.
func testWalkConcurrentDelete(t *testing.T, s Store) {
	ctx := t.Context()
	all := map[berth.Digest][]byte{}
	for _, data := range samePrefix(newRand(t), 12) {
		all[mustPut(t, s, berth.SHA256, data)] = data
	}
	var first berth.Digest
	seen := map[berth.Digest]bool{}
	err := s.Walk(ctx, func(info berth.BlobInfo) error {
		if seen[info.Digest] {
			return fmt.Errorf("walk reported %s twice", info.Digest)
		}
		seen[info.Digest] = true
		if first == "" {
			first = info.Digest
			for d := range all {
				if d != first {
					if err := s.Delete(ctx, d); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk while deleting: %v", err)
	}
	for d := range seen {
		if _, ok := all[d]; !ok {
			t.Fatalf("Walk reported %s, which was never put", d)
		}
	}
	wantBlobs(t, s, map[berth.Digest][]byte{first: all[first]})
}

// testUpload is the whole life of an upload committed under alg: create, append
// chunks (each durable and reported by StatUpload), commit, the blob visible and
// the upload forgotten.
func testUpload(t *testing.T, s Store, alg string) {
	ctx := t.Context()
	r := newRand(t)
	id := newID(r)
	data := randomBytes(r, 3<<20+12345)
	if err := s.CreateUpload(ctx, id); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	wantUpload(t, s, id, 0)
	wantUploads(t, s, map[string]int64{id: 0})

	var size int64
	for i, n := range []int{0, 1, 4096, 1<<20 + 3, 0, 2 << 20} {
		chunk := data[size : size+int64(n)]
		got, err := s.AppendUpload(ctx, id, size, bytes.NewReader(chunk))
		if err != nil {
			t.Fatalf("AppendUpload #%d (%d bytes at %d): %v", i+1, n, size, err)
		}
		size += int64(n)
		if got != size {
			t.Fatalf("AppendUpload #%d returned size %d, want %d", i+1, got, size)
		}
		wantUpload(t, s, id, size)
	}
	got, err := s.AppendUpload(ctx, id, size, bytes.NewReader(data[size:]))
	if err != nil || got != int64(len(data)) {
		t.Fatalf("last AppendUpload = %d, %v; want %d, nil", got, err, len(data))
	}
	wantUploads(t, s, map[string]int64{id: int64(len(data))})

	d := berth.DigestOf(alg, data)
	wantAbsent(t, s, d)
	info, err := s.CommitUpload(ctx, id, d)
	if err != nil {
		t.Fatalf("CommitUpload %s: %v", d.Short(), err)
	}
	checkInfo(t, "CommitUpload", info, d, int64(len(data)))
	info, err = s.Stat(ctx, d)
	if err != nil {
		t.Fatalf("Stat after commit: %v", err)
	}
	checkInfo(t, "Stat", info, d, int64(len(data)))
	wantBlobs(t, s, map[berth.Digest][]byte{d: data})

	_, err = s.StatUpload(ctx, id)
	wantCode(t, err, berth.CodeBlobUploadUnknown, "StatUpload after commit")
	_, err = s.AppendUpload(ctx, id, int64(len(data)), bytes.NewReader([]byte("more")))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "AppendUpload after commit")
	_, err = s.CommitUpload(ctx, id, d)
	wantCode(t, err, berth.CodeBlobUploadUnknown, "CommitUpload twice")
	wantUploads(t, s, map[string]int64{})
}

// UploadSmallReads: readers that return a byte or a few at a time, or data together
// with io.EOF, append exactly their bytes.
func testUploadSmallReads(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	id := newID(r)
	data := randomBytes(r, 40_000)
	mustCreate(t, s, id)
	readers := []func([]byte) io.Reader{
		func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		func(b []byte) io.Reader { return strings.NewReader(string(b)) },
	}
	var size int64
	for i, mk := range readers {
		chunk := data[i*10_000 : (i+1)*10_000]
		n, err := s.AppendUpload(ctx, id, size, mk(chunk))
		if err != nil {
			t.Fatalf("AppendUpload with reader #%d: %v", i, err)
		}
		size += int64(len(chunk))
		if n != size {
			t.Fatalf("AppendUpload with reader #%d = %d, want %d", i, n, size)
		}
	}
	mustCommit(t, s, id, berth.DigestOf(berth.SHA256, data), data)
}

// UploadEmpty: an upload with no bytes commits as the empty blob, under either
// algorithm.
func testUploadEmpty(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		id := newID(r)
		mustCreate(t, s, id)
		if alg == berth.SHA512 {
			if n, err := s.AppendUpload(ctx, id, 0, bytes.NewReader(nil)); err != nil || n != 0 {
				t.Fatalf("empty AppendUpload = %d, %v", n, err)
			}
		}
		mustCommit(t, s, id, berth.DigestOf(alg, nil), nil)
	}
}

// UploadWrongOffset: offset must equal the current size, else range_invalid and
// nothing is written.
func testUploadWrongOffset(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	id := newID(r)
	data := randomBytes(r, 2000)
	mustCreate(t, s, id)
	_, err := s.AppendUpload(ctx, id, 1, bytes.NewReader(data[:1000]))
	wantCode(t, err, berth.CodeRangeInvalid, "AppendUpload at 1 to an empty upload")
	wantUpload(t, s, id, 0)
	mustAppend(t, s, id, 0, data[:1000])
	for _, off := range []int64{0, 999, 1001, 5000, -2} {
		_, err := s.AppendUpload(ctx, id, off, bytes.NewReader(data[1000:]))
		wantCode(t, err, berth.CodeRangeInvalid, "AppendUpload at %d to an upload of 1000 bytes", off)
		wantUpload(t, s, id, 1000)
	}
	mustAppend(t, s, id, 1000, data[1000:])
	mustCommit(t, s, id, berth.DigestOf(berth.SHA256, data), data)
}

// UploadAppendAtEnd: berth.AppendAtEnd appends at the upload's end whatever
// it is, mixed with appends at an offset, and to an unknown upload it is
// blob_upload_unknown.
func testUploadAppendAtEnd(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	id := newID(r)
	data := randomBytes(r, 3000)
	_, err := s.AppendUpload(ctx, id, berth.AppendAtEnd, bytes.NewReader(data))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "AppendUpload at the end of an upload never created")
	mustCreate(t, s, id)
	for _, chunk := range [][2]int{{0, 1000}, {1000, 1500}, {1500, 3000}} {
		off := berth.AppendAtEnd
		if chunk[0] == 1000 {
			off = 1000 // an offset of its own between appends at the end
		}
		n, err := s.AppendUpload(ctx, id, off, bytes.NewReader(data[chunk[0]:chunk[1]]))
		if err != nil || n != int64(chunk[1]) {
			t.Fatalf("AppendUpload of bytes %d to %d at %d = %d, %v; want %d", chunk[0], chunk[1], off, n, err, chunk[1])
		}
	}
	wantUpload(t, s, id, 3000)
	mustCommit(t, s, id, berth.DigestOf(berth.SHA256, data), data)
}

// UploadAppendError: after an error the upload holds the previous content plus
// possibly a prefix of r, StatUpload tells how much, and the client resumes from
// there to a correct blob.
func testUploadAppendError(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	data := randomBytes(r, 4<<20)
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		id := newID(r)
		mustCreate(t, s, id)
		mustAppend(t, s, id, 0, data[:1<<20])

		errBroken := errors.New("client went away")
		sent := data[1<<20 : 3<<20+7]
		_, err := s.AppendUpload(ctx, id, 1<<20, io.MultiReader(bytes.NewReader(sent), iotest.ErrReader(errBroken)))
		if !errors.Is(err, errBroken) {
			t.Fatalf("AppendUpload with a failing reader returned %v, want the reader's error in the chain", err)
		}
		info, err := s.StatUpload(ctx, id)
		if err != nil {
			t.Fatalf("StatUpload after a failed append: %v", err)
		}
		if info.Size < 1<<20 || info.Size > 1<<20+int64(len(sent)) {
			t.Fatalf("after a failed append of %d bytes at %d the upload holds %d bytes", len(sent), 1<<20, info.Size)
		}
		// Resume from what the store reports.
		mustAppend(t, s, id, info.Size, data[info.Size:])
		mustCommit(t, s, id, berth.DigestOf(alg, data), data)
	}
}

// UploadConcurrentAppend: of two appends at the same offset, one wins and the other
// gets range_invalid without writing.
func testUploadConcurrentAppend(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	id := newID(r)
	mustCreate(t, s, id)
	chunks := [][]byte{randomBytes(r, 3<<20), randomBytes(r, 3<<20)}
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		wg.Go(func() {
			_, errs[i] = s.AppendUpload(ctx, id, 0, iotest.HalfReader(bytes.NewReader(c)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch berth.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatal("two appends at offset 0 both succeeded")
			}
			winner = i
		case berth.CodeRangeInvalid:
		default:
			t.Fatalf("concurrent append #%d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("neither of two concurrent appends at offset 0 succeeded")
	}
	mustCommit(t, s, id, berth.DigestOf(berth.SHA256, chunks[winner]), chunks[winner])
}

// UploadCommitWrongDigest: on a mismatch CommitUpload returns digest_invalid and
// leaves the upload as it was, so it can still be committed.
func testUploadCommitWrongDigest(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	data := randomBytes(r, 1<<20+1)
	id := newID(r)
	mustCreate(t, s, id)
	mustAppend(t, s, id, 0, data)
	wrong := []berth.Digest{
		berth.DigestOf(berth.SHA256, data[1:]),
		berth.DigestOf(berth.SHA512, append(data[:len(data):len(data)], 0)),
		berth.DigestOf(berth.SHA256, nil),
		"sha256:not-hex",
		"sha256:../../../etc/passwd",
	}
	for _, d := range wrong {
		_, err := s.CommitUpload(ctx, id, d)
		wantCodeIn(t, err, []berth.Code{berth.CodeDigestInvalid, berth.CodeUnsupported}, "CommitUpload under a wrong digest %q", d)
		wantUpload(t, s, id, int64(len(data)))
	}
	wantBlobs(t, s, nil)
	// The upload still takes appends and commits.
	more := randomBytes(r, 10)
	mustAppend(t, s, id, int64(len(data)), more)
	data = append(data, more...)
	mustCommit(t, s, id, berth.DigestOf(berth.SHA512, data), data)
}

// UploadCommitExistingBlob: committing content that is already stored succeeds.
func testUploadCommitExistingBlob(t *testing.T, s Store) {
	r := newRand(t)
	data := randomBytes(r, 5000)
	d := mustPut(t, s, berth.SHA256, data)
	id := newID(r)
	mustCreate(t, s, id)
	mustAppend(t, s, id, 0, data)
	mustCommit(t, s, id, d, data)
}

// UploadUnknown: every operation on an upload that was never created returns
// blob_upload_unknown, except deleting it.
func testUploadUnknown(t *testing.T, s Store) {
	ctx := t.Context()
	id := newID(newRand(t))
	_, err := s.StatUpload(ctx, id)
	wantCode(t, err, berth.CodeBlobUploadUnknown, "StatUpload of an unknown upload")
	_, err = s.AppendUpload(ctx, id, 0, strings.NewReader("x"))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "AppendUpload to an unknown upload")
	_, err = s.CommitUpload(ctx, id, berth.DigestOf(berth.SHA256, nil))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "CommitUpload of an unknown upload")
	if err := s.DeleteUpload(ctx, id); err != nil {
		t.Fatalf("DeleteUpload of an unknown upload: %v", err)
	}
	wantUploads(t, s, map[string]int64{})
	wantBlobs(t, s, nil)
}

// UploadInvalidID: an id that is not a safe path component ([A-Za-z0-9-]) never
// reaches storage; looking it up answers blob_upload_unknown.
func testUploadInvalidID(t *testing.T, s Store) {
	ctx := t.Context()
	bad := []string{"", ".", "..", "../x", "../../../../tmp/x", "a/b", `a\b`, "a b", "a\x00b", "a.b", "ä", strings.Repeat("a", 65)}
	for _, id := range bad {
		if err := s.CreateUpload(ctx, id); err == nil {
			t.Errorf("CreateUpload(%q) succeeded", id)
		}
		_, err := s.StatUpload(ctx, id)
		wantCode(t, err, berth.CodeBlobUploadUnknown, "StatUpload(%q)", id)
		_, err = s.AppendUpload(ctx, id, 0, strings.NewReader("x"))
		wantCode(t, err, berth.CodeBlobUploadUnknown, "AppendUpload(%q)", id)
		_, err = s.CommitUpload(ctx, id, berth.DigestOf(berth.SHA256, []byte("x")))
		wantCode(t, err, berth.CodeBlobUploadUnknown, "CommitUpload(%q)", id)
		if err := s.DeleteUpload(ctx, id); err != nil {
			wantCode(t, err, berth.CodeBlobUploadUnknown, "DeleteUpload(%q)", id)
		}
	}
	// The longest valid id works.
	long := strings.Repeat("A-9z", 16)
	mustCreate(t, s, long)
	wantUploads(t, s, map[string]int64{long: 0})
	wantBlobs(t, s, nil)
}

// UploadsInterleaved: uploads are independent of each other.
func testUploadsInterleaved(t *testing.T, s Store) {
	r := newRand(t)
	const n = 4
	ids := make([]string, n)
	datas := make([][]byte, n)
	for i := range n {
		ids[i] = newID(r)
		datas[i] = randomBytes(r, 30_000+i)
		mustCreate(t, s, ids[i])
	}
	for _, off := range []int{0, 10_000, 20_000} {
		for i := range n {
			end := off + 10_000
			if off == 20_000 {
				end = len(datas[i]) // the last chunk takes the odd bytes
			}
			mustAppend(t, s, ids[i], int64(off), datas[i][off:end])
		}
	}
	for i := range n {
		alg := berth.SHA256
		if i%2 == 1 {
			alg = berth.SHA512
		}
		mustCommit(t, s, ids[i], berth.DigestOf(alg, datas[i]), datas[i])
	}
}

// DeleteUpload removes the upload; deleting it again is not an error.
func testDeleteUpload(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	keep, gone := newID(r), newID(r)
	data := randomBytes(r, 2000)
	mustCreate(t, s, keep)
	mustCreate(t, s, gone)
	mustAppend(t, s, keep, 0, data[:10])
	mustAppend(t, s, gone, 0, data)
	for i := range 2 {
		if err := s.DeleteUpload(ctx, gone); err != nil {
			t.Fatalf("DeleteUpload #%d: %v", i+1, err)
		}
	}
	_, err := s.StatUpload(ctx, gone)
	wantCode(t, err, berth.CodeBlobUploadUnknown, "StatUpload after DeleteUpload")
	_, err = s.AppendUpload(ctx, gone, 2000, strings.NewReader("x"))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "AppendUpload after DeleteUpload")
	_, err = s.CommitUpload(ctx, gone, berth.DigestOf(berth.SHA256, data))
	wantCode(t, err, berth.CodeBlobUploadUnknown, "CommitUpload after DeleteUpload")
	wantUploads(t, s, map[string]int64{keep: 10})
	wantBlobs(t, s, nil)
}

// WalkUploads calls fn for every unfinished upload; an error from fn is returned.
func testWalkUploads(t *testing.T, s Store) {
	ctx := t.Context()
	r := newRand(t)
	want := map[string]int64{}
	wantUploads(t, s, want)
	var ids []string
	datas := map[string][]byte{}
	for i := range 5 {
		id := newID(r)
		mustCreate(t, s, id)
		data := randomBytes(r, i*777)
		mustAppend(t, s, id, 0, data)
		want[id] = int64(len(data))
		datas[id] = data
		ids = append(ids, id)
	}
	wantUploads(t, s, want)

	if err := s.DeleteUpload(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	delete(want, ids[0])
	mustCommit(t, s, ids[1], berth.DigestOf(berth.SHA256, datas[ids[1]]), datas[ids[1]])
	delete(want, ids[1])
	wantUploads(t, s, want)

	errStop := errors.New("stop here")
	calls := 0
	err := s.WalkUploads(ctx, func(berth.UploadInfo) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("WalkUploads with fn failing: %v after %d calls, want the error after 1", err, calls)
	}
}

// Helpers.

// newRand returns a generator seeded by the test's name, so every run of a test
// sees the same content and different tests see different content.
func newRand(t *testing.T) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte(t.Name())))
}

func randomBytes(r *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

// samePrefix returns n small contents whose sha256 digests share the first two
// hex digits.
func samePrefix(r *rand.ChaCha8, n int) [][]byte {
	groups := map[string][][]byte{}
	for {
		data := randomBytes(r, 16)
		p := berth.DigestOf(berth.SHA256, data).Encoded()[:2]
		groups[p] = append(groups[p], data)
		if len(groups[p]) == n {
			return groups[p]
		}
	}
}

// newID returns a fresh upload id of the kind a registry chooses.
func newID(r *rand.ChaCha8) string {
	b := randomBytes(r, 16)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func wantCode(t *testing.T, err error, code berth.Code, format string, args ...any) {
	t.Helper()
	if got := berth.ErrorCode(err); got != code {
		t.Fatalf("%s: got code %q (error: %v), want %q", fmt.Sprintf(format, args...), got, err, code)
	}
}

func wantCodeIn(t *testing.T, err error, codes []berth.Code, format string, args ...any) {
	t.Helper()
	got := berth.ErrorCode(err)
	for _, c := range codes {
		if got == c {
			return
		}
	}
	t.Fatalf("%s: got code %q (error: %v), want one of %q", fmt.Sprintf(format, args...), got, err, codes)
}

func checkInfo(t *testing.T, op string, info berth.BlobInfo, d berth.Digest, size int64) {
	t.Helper()
	if info.Digest != d || info.Size != size {
		t.Fatalf("%s returned digest %s size %d, want %s size %d", op, info.Digest, info.Size, d, size)
	}
	if info.ModTime.IsZero() {
		t.Fatalf("%s of %s returned a zero ModTime", op, d.Short())
	}
}

func mustPut(t *testing.T, s Store, alg string, data []byte) berth.Digest {
	t.Helper()
	d := berth.DigestOf(alg, data)
	info, err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put %s: %v", d.Short(), err)
	}
	checkInfo(t, "Put", info, d, int64(len(data)))
	return d
}

func readBlob(t *testing.T, s Store, d berth.Digest) []byte {
	t.Helper()
	rc, info, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open %s: %v", d.Short(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", d.Short(), err)
	}
	checkInfo(t, "Open", info, d, int64(len(b)))
	return b
}

func wantAbsent(t *testing.T, s Store, d berth.Digest) {
	t.Helper()
	_, err := s.Stat(t.Context(), d)
	wantCode(t, err, berth.CodeBlobUnknown, "Stat %s", d.Short())
	rc, _, err := s.Open(t.Context(), d)
	if err == nil {
		rc.Close()
	}
	wantCode(t, err, berth.CodeBlobUnknown, "Open %s", d.Short())
}

// wantBlobs checks that Walk reports exactly want, with sizes, and that each
// blob reads back as its content.
func wantBlobs(t *testing.T, s Store, want map[berth.Digest][]byte) {
	t.Helper()
	got := map[berth.Digest]int64{}
	err := s.Walk(t.Context(), func(info berth.BlobInfo) error {
		if _, dup := got[info.Digest]; dup {
			return fmt.Errorf("Walk reported %s twice", info.Digest)
		}
		if info.ModTime.IsZero() {
			return fmt.Errorf("Walk reported %s with a zero ModTime", info.Digest)
		}
		got[info.Digest] = info.Size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for d, data := range want {
		size, ok := got[d]
		if !ok {
			t.Fatalf("Walk did not report %s", d)
		}
		if size != int64(len(data)) {
			t.Fatalf("Walk reported %s with size %d, want %d", d.Short(), size, len(data))
		}
		if b := readBlob(t, s, d); !bytes.Equal(b, data) {
			t.Fatalf("%s reads back other bytes than were stored", d.Short())
		}
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			t.Fatalf("Walk reported %s, which should not be stored", d)
		}
	}
}

func mustCreate(t *testing.T, s Store, id string) {
	t.Helper()
	if err := s.CreateUpload(t.Context(), id); err != nil {
		t.Fatalf("CreateUpload %s: %v", id, err)
	}
}

func mustAppend(t *testing.T, s Store, id string, offset int64, data []byte) {
	t.Helper()
	n, err := s.AppendUpload(t.Context(), id, offset, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("AppendUpload %d bytes at %d: %v", len(data), offset, err)
	}
	if want := offset + int64(len(data)); n != want {
		t.Fatalf("AppendUpload %d bytes at %d returned size %d, want %d", len(data), offset, n, want)
	}
	wantUpload(t, s, id, n)
}

// mustCommit commits id under d and checks that the blob holds data and that the
// upload is gone.
func mustCommit(t *testing.T, s Store, id string, d berth.Digest, data []byte) {
	t.Helper()
	ctx := t.Context()
	info, err := s.CommitUpload(ctx, id, d)
	if err != nil {
		t.Fatalf("CommitUpload %s under %s: %v", id, d.Short(), err)
	}
	checkInfo(t, "CommitUpload", info, d, int64(len(data)))
	info, err = s.Stat(ctx, d)
	if err != nil {
		t.Fatalf("Stat after CommitUpload: %v", err)
	}
	checkInfo(t, "Stat after CommitUpload", info, d, int64(len(data)))
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("committed blob %s reads back other bytes than were uploaded", d.Short())
	}
	_, err = s.StatUpload(ctx, id)
	wantCode(t, err, berth.CodeBlobUploadUnknown, "StatUpload after CommitUpload")
}

func wantUpload(t *testing.T, s Store, id string, size int64) {
	t.Helper()
	info, err := s.StatUpload(t.Context(), id)
	if err != nil {
		t.Fatalf("StatUpload %s: %v", id, err)
	}
	if info.ID != id || info.Size != size || info.ModTime.IsZero() {
		t.Fatalf("StatUpload = %+v, want id %s size %d and a ModTime", info, id, size)
	}
}

// wantUploads checks that WalkUploads reports exactly want, with sizes.
func wantUploads(t *testing.T, s Store, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	err := s.WalkUploads(t.Context(), func(info berth.UploadInfo) error {
		if _, dup := got[info.ID]; dup {
			return fmt.Errorf("WalkUploads reported %s twice", info.ID)
		}
		if info.ModTime.IsZero() {
			return fmt.Errorf("WalkUploads reported %s with a zero ModTime", info.ID)
		}
		got[info.ID] = info.Size
		return nil
	})
	if err != nil {
		t.Fatalf("WalkUploads: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("WalkUploads reported %v, want %v", got, want)
	}
	for id, size := range want {
		if g, ok := got[id]; !ok || g != size {
			t.Fatalf("WalkUploads reported %v, want %v", got, want)
		}
	}
}
