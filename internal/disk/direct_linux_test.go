package disk

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/berth-dev/berth"
)

// A piece that direct I/O cannot take (an unaligned length, as a blob's last
// piece has, or unaligned memory) is written all the same, through the page
// cache, and turns direct I/O off for the rest of the file.
func TestWriteChunkLeavesDirectIO(t *testing.T) {
	data := randomBytes(9, 3<<20+100)
	for _, tc := range []struct {
		name    string
		aligned int // bytes written with direct I/O before the piece that is not
		piece   func(b []byte) []byte
	}{
		{"short length", 2 << 20, func(b []byte) []byte { return b[:100] }},
		{"unaligned memory", 1 << 20, func(b []byte) []byte { return b[1 : 1+directAlign] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := setDirect(f, true); err != nil {
				t.Skipf("the file system of the test's temp dir takes no direct I/O: %v", err)
			}
			direct := isDirect(f)
			if !direct {
				t.Fatal("setDirect succeeded, but the file has no O_DIRECT")
			}
			buf := alignedBuffer(2 << 20)
			var want []byte
			for off := 0; off < tc.aligned; off += 1 << 20 {
				b := buf[:1<<20]
				copy(b, data[off:])
				if err := writeChunk(f, b, &direct); err != nil {
					t.Fatal(err)
				}
				want = append(want, b...)
			}
			if !direct || !isDirect(f) {
				t.Fatal("aligned pieces turned direct I/O off")
			}
			copy(buf, data[tc.aligned:])
			piece := tc.piece(buf)
			if err := writeChunk(f, piece, &direct); err != nil {
				t.Fatal(err)
			}
			want = append(want, piece...)
			if direct || isDirect(f) {
				t.Error("direct I/O is still on after a piece it cannot take")
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the file holds %d bytes, not the %d written", len(got), len(want))
			}
		})
	}
}

// Put writes a blob past the page cache where the file system allows: once
// stored, its bytes are not in memory, but for the last piece.
func TestPutBypassesPageCache(t *testing.T) {
	s := newStore(t)
	probe, err := os.CreateTemp(s.tmp, "probe-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe.Name())
	defer probe.Close()
	if err := setDirect(probe, true); err != nil {
		t.Skipf("the file system of the test's temp dir takes no direct I/O: %v", err)
	}
	data := randomBytes(10, 8<<20+100)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	resident := residentPages(t, s.blobPath(d), len(data))
	if limit := 1 + (bufferSize/os.Getpagesize())/4; resident > limit { // the last piece, and some slack
		t.Fatalf("%d pages of the stored blob are in the page cache, want at most %d", resident, limit)
	}
	rc, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make([]byte, len(data))
	if _, err := rc.Read(got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
}

// residentPages counts the pages of the file's first n bytes that are in the
// page cache (mincore).
func residentPages(t *testing.T, path string, n int) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	vec := make([]byte, (n+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident
}

// Put from a source that hands out its own buffers (an io.WriterTo) stores
// exactly its bytes, whatever the pieces' lengths and alignment, past the
// page cache but for the last piece; it refuses a body longer or shorter
// than declared, and a source that fails, leaving nothing behind. A piece
// direct I/O takes as it is is written without a copy.
func TestPutFromWriterTo(t *testing.T) {
	s := newStore(t)
	probe, err := os.CreateTemp(s.tmp, "probe-*")
	if err != nil {
		t.Fatal(err)
	}
	err = setDirect(probe, true)
	probe.Close()
	os.Remove(probe.Name())
	if err != nil {
		t.Skipf("the file system of the test's temp dir takes no direct I/O: %v", err)
	}
	data := randomBytes(11, 6<<20+3*directAlign+107)
	mem := alignedBuffer(len(data) + 8*directAlign) // each piece at its own aligned place, or one byte past it
	var pieces [][]byte
	off, at := 0, 0
	for _, p := range []struct{ shift, n int }{
		{0, 1 << 20},           // aligned
		{1, 1 << 20},           // unaligned memory
		{0, 100},               // odd length
		{0, 2 << 20},           // aligned, after buffered bytes
		{0, 3*directAlign + 7}, // aligned memory, odd length
		{0, len(data) - (4<<20 + 107 + 3*directAlign)}, // the rest
	} {
		b := mem[at+p.shift : at+p.shift+p.n]
		copy(b, data[off:])
		pieces = append(pieces, b)
		off += p.n
		at += (p.shift + p.n + directAlign - 1) &^ (directAlign - 1)
	}
	if off != len(data) {
		t.Fatalf("pieces of %d bytes, data of %d", off, len(data))
	}
	d := berth.DigestOf(berth.SHA256, data)

	for _, tc := range []struct {
		name string
		size int64
		err  error
		want berth.Code
	}{
		{"declared one byte short", int64(len(data)) - 1, nil, berth.CodeSizeInvalid},
		{"declared one byte long", int64(len(data)) + 1, nil, berth.CodeSizeInvalid},
		{"the source fails", -1, io.ErrUnexpectedEOF, berth.CodeInternal},
	} {
		_, err := s.Put(t.Context(), d, tc.size, &piecesSource{pieces: pieces, err: tc.err})
		if err == nil || berth.ErrorCode(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
		wantTempEmpty(t, s)
	}
	wantNoBlobs(t, s)

	if _, err := s.Put(t.Context(), d, int64(len(data)), &piecesSource{pieces: pieces}); err != nil {
		t.Fatal(err)
	}
	if resident, limit := residentPages(t, s.blobPath(d), len(data)), 1+(bufferSize/os.Getpagesize())/4; resident > limit {
		t.Errorf("%d pages of the stored blob are in the page cache, want at most %d", resident, limit)
	}
	got, err := os.ReadFile(s.blobPath(d))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes (%v), not the %d put", len(got), err, len(data))
	}

	f, err := os.CreateTemp(s.tmp, "nocopy-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := setDirect(f, true); err != nil {
		t.Fatal(err)
	}
	w := &hashedFile{ctx: t.Context(), f: f, h: sha256.New(), limit: -1, direct: true}
	if n, err := w.Write(pieces[0]); n != len(pieces[0]) || err != nil || w.buf != nil {
		t.Fatalf("an aligned piece: %d, %v, copied to a buffer: %t", n, err, w.buf != nil)
	}
}

// piecesSource writes its pieces, then returns err; read, it is their
// concatenation.
type piecesSource struct {
	pieces [][]byte
	err    error
	r      io.Reader
}

func (p *piecesSource) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, b := range p.pieces {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, p.err
}

func (p *piecesSource) Read(b []byte) (int, error) {
	if p.r == nil {
		rs := []io.Reader{bytes.NewReader(bytes.Join(p.pieces, nil))}
		if p.err != nil {
			rs = append(rs, iotest.ErrReader(p.err))
		}
		p.r = io.MultiReader(rs...)
	}
	return p.r.Read(b)
}
