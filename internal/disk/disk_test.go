package disk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/blobtest"
)

func TestStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Store { return newStore(t) })
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// The layout is what operators back up and what tools may inspect.
func TestLayout(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(1, 1000)
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		d := berth.DigestOf(alg, data)
		if _, err := s.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(s.Root(), "blobs", alg, d.Encoded()[:2], d.Encoded())
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("blob %s is not at %s: %v", d.Short(), path, err)
		}
	}
	if err := s.CreateUpload(ctx, "u-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "uploads", "u-1", "data")); err != nil {
		t.Fatalf("upload data file: %v", err)
	}
	wantTempEmpty(t, s)
}

// A temp file left by a crash is never a blob, and CleanTemp removes it once it
// is old enough; debris of an upload that lost its data file goes too, while
// live uploads and blobs stay.
func TestCleanTemp(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	now := time.Now()
	old := now.Add(-2 * time.Hour)

	data := randomBytes(2, 5000)
	d := berth.DigestOf(berth.SHA256, data)
	partial := filepath.Join(s.Root(), "tmp", "put-123456")
	fresh := filepath.Join(s.Root(), "tmp", "put-789")
	debrisDir := filepath.Join(s.Root(), "tmp", "commit-x-ABC")
	for _, f := range []string{partial, fresh} {
		if err := os.WriteFile(f, data[:3000], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(debrisDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(debrisDir, "sha256"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An upload directory whose creation crashed before its data file.
	remnant := filepath.Join(s.Root(), "uploads", "remnant")
	if err := os.Mkdir(remnant, 0o700); err != nil {
		t.Fatal(err)
	}
	// A live upload, untouched for as long.
	if err := s.CreateUpload(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "live", 0, data)
	kept := filepath.Join(s.Root(), "uploads", "live")
	for _, p := range []string{partial, debrisDir, remnant, kept, filepath.Join(kept, "data")} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	_, err := s.Stat(ctx, d)
	if !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("Stat of the partial blob: %v, want blob_unknown", err)
	}
	wantNoBlobs(t, s)
	if _, err := s.StatUpload(ctx, "remnant"); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("StatUpload of a directory without data: %v", err)
	}
	wantUploads(t, s, "live")

	if err := s.CleanTemp(now.Add(-time.Hour)); err != nil {
		t.Fatalf("CleanTemp: %v", err)
	}
	for _, p := range []string{partial, debrisDir, remnant} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived CleanTemp: %v", p, err)
		}
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("CleanTemp removed a temp file newer than the cutoff: %v", err)
	}
	wantUploads(t, s, "live")
	mustCommit(t, s, "live", berth.DigestOf(berth.SHA256, data))

	if err := s.CleanTemp(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantTempEmpty(t, s)
}

// A new Store on the same root continues an upload: everything that matters is
// on disk.
func TestRestartContinuesUpload(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	data := randomBytes(3, 3<<20+5)
	s1, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.CreateUpload(ctx, "resume"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s1, "resume", 0, data[:1<<20])

	s2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s2.StatUpload(ctx, "resume")
	if err != nil || info.Size != 1<<20 {
		t.Fatalf("StatUpload after restart = %+v, %v", info, err)
	}
	mustAppend(t, s2, "resume", 1<<20, data[1<<20:])
	mustCommit(t, s2, "resume", berth.DigestOf(berth.SHA256, data))
	if got := readBlob(t, s1, berth.DigestOf(berth.SHA256, data)); !bytes.Equal(got, data) {
		t.Fatal("blob committed after restart holds other bytes")
	}
}

// A hash state file that is missing, older than the data, torn or foreign is
// never trusted by a process that continues the upload after a restart: the data
// is hashed again, for the commit and for further appends.
func TestHashStateRecovery(t *testing.T) {
	data := randomBytes(4, 2<<20+77)
	half := int64(1 << 20)
	cases := map[string]func(t *testing.T, statePath string, older []byte){
		"missing": func(t *testing.T, p string, _ []byte) { remove(t, p) },
		"older":   func(t *testing.T, p string, older []byte) { write(t, p, older) },
		"torn": func(t *testing.T, p string, _ []byte) {
			b, _ := os.ReadFile(p)
			write(t, p, b[:len(b)/2])
		},
		"flipped": func(t *testing.T, p string, _ []byte) {
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 0xff
			write(t, p, b)
		},
		"empty":   func(t *testing.T, p string, _ []byte) { write(t, p, nil) },
		"garbage": func(t *testing.T, p string, _ []byte) { write(t, p, randomBytes(9, 200)) },
	}
	for name, damage := range cases {
		for _, appendAfter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/append=%v", name, appendAfter), func(t *testing.T) {
				s := newStore(t)
				s.stateFileMin = 0 // a state file at every size
				statePath := filepath.Join(s.Root(), "uploads", "u", stateFile)
				if err := s.CreateUpload(t.Context(), "u"); err != nil {
					t.Fatal(err)
				}
				mustAppend(t, s, "u", 0, data[:half/2])
				older, err := os.ReadFile(statePath)
				if err != nil {
					t.Fatal(err)
				}
				mustAppend(t, s, "u", half/2, data[half/2:half])
				damage(t, statePath, older)
				// A restart: what this process kept in memory is gone.
				s, err = New(s.Root())
				if err != nil {
					t.Fatal(err)
				}
				s.stateFileMin = 0
				content := data[:half]
				if appendAfter {
					mustAppend(t, s, "u", half, data[half:])
					content = data
					if readSHA256State(filepath.Dir(statePath), int64(len(data))) == nil {
						t.Fatal("an append over a damaged state did not save a good one")
					}
				}
				mustCommit(t, s, "u", berth.DigestOf(berth.SHA256, content))
			})
		}
	}
}

// CommitUpload with a sha256 digest trusts the saved state instead of reading the
// data again; sha512 reads it. The test shows this by changing a byte of the data
// behind the store's back: the sha512 commit notices, the sha256 commit does not.
// (That is the price of not re-reading: the data is verified as it arrives, not
// again when it is committed.)
func TestCommitUsesSavedState(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(5, 1<<20)
	if err := s.CreateUpload(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "u", 0, data)
	f, err := os.OpenFile(filepath.Join(s.Root(), "uploads", "u", dataFile), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^data[100]}, 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = s.CommitUpload(ctx, "u", berth.DigestOf(berth.SHA512, data))
	if !berth.IsCode(err, berth.CodeDigestInvalid) {
		t.Fatalf("sha512 commit of changed data: %v, want digest_invalid (the data re-read)", err)
	}
	if _, err := s.CommitUpload(ctx, "u", berth.DigestOf(berth.SHA256, data)); err != nil {
		t.Fatalf("sha256 commit: %v, want success from the saved state", err)
	}
}

// A failed append leaves the upload at its previous size, with a hash state for
// that size, so the next append continues the hash without reading anything.
func TestFailedAppendTruncates(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	s.stateFileMin = 0 // the state file is checked too
	data := randomBytes(6, 4<<20)
	if err := s.CreateUpload(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "u", 0, data[:1000])
	errBroken := errors.New("broken pipe")
	_, err := s.AppendUpload(ctx, "u", 1000, io.MultiReader(bytes.NewReader(data[1000:3<<20]), iotest.ErrReader(errBroken)))
	if !errors.Is(err, errBroken) {
		t.Fatalf("AppendUpload: %v, want the reader's error", err)
	}
	info, err := s.StatUpload(ctx, "u")
	if err != nil || info.Size != 1000 {
		t.Fatalf("after a failed append: %+v, %v; want size 1000", info, err)
	}
	if readSHA256State(filepath.Join(s.Root(), "uploads", "u"), 1000) == nil || s.states.get("u", 1000) == nil {
		t.Fatal("the hash state does not describe the 1000 bytes left")
	}

	// A cancelled context fails the same way.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendUpload(cctx, "u", 1000, bytes.NewReader(data[1000:])); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendUpload with a cancelled context: %v", err)
	}
	mustAppend(t, s, "u", 1000, data[1000:])
	mustCommit(t, s, "u", berth.DigestOf(berth.SHA256, data))
}

// Put never leaves temp files behind, whatever fails.
func TestPutFailuresLeaveNoTemp(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(7, 2<<20)
	d := berth.DigestOf(berth.SHA256, data)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	failures := []func() error{
		func() error {
			_, err := s.Put(ctx, berth.DigestOf(berth.SHA256, nil), -1, bytes.NewReader(data))
			return err
		},
		func() error { _, err := s.Put(ctx, d, 5, bytes.NewReader(data)); return err },
		func() error {
			_, err := s.Put(ctx, d, -1, io.MultiReader(bytes.NewReader(data[:1<<20+1]), iotest.ErrReader(io.ErrUnexpectedEOF)))
			return err
		},
		func() error { _, err := s.Put(cctx, d, -1, bytes.NewReader(data)); return err },
	}
	for i, fail := range failures {
		if err := fail(); err == nil {
			t.Fatalf("failure #%d succeeded", i)
		}
		wantTempEmpty(t, s)
	}
	wantNoBlobs(t, s)
}

// copyHashed returns a write error, and stops on a cancelled context, without
// leaking its writer or deadlocking, however many buffers are in flight.
func TestCopyHashedFailures(t *testing.T) {
	data := randomBytes(14, 5<<20+3)
	path := filepath.Join(t.TempDir(), "f")
	write(t, path, nil)
	ro, err := os.Open(path) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n, err := copyHashed(t.Context(), ro, 0, sha256.New(), bytes.NewReader(data))
	if err == nil {
		t.Fatalf("copyHashed to a read-only file copied %d bytes without error", n)
	}

	rw, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancellingReader{r: bytes.NewReader(data), after: 2<<20 + 5, cancel: cancel}
	n, err = copyHashed(ctx, rw, 0, sha256.New(), r)
	if !errors.Is(err, context.Canceled) || n > 3<<20 {
		t.Fatalf("copyHashed with a context cancelled after %d bytes = %d, %v", r.after, n, err)
	}
}

// cancellingReader cancels a context once it has given after bytes.
type cancellingReader struct {
	r      io.Reader
	after  int
	n      int
	cancel func()
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n += n; c.n >= c.after {
		c.cancel()
	}
	return n, err
}

// Walk reports only files named by their digest in the right directory.
func TestWalkSkipsForeignFiles(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(8, 100)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := s.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	other := berth.DigestOf(berth.SHA256, []byte("other")).Encoded()
	wrongPrefix := "00"
	if other[:2] == wrongPrefix {
		wrongPrefix = "01"
	}
	root := filepath.Join(s.Root(), "blobs", "sha256")
	for _, p := range []string{
		filepath.Join(root, wrongPrefix, other),             // in the wrong fan-out directory
		filepath.Join(root, other[:2], "put-123"),           // not a digest
		filepath.Join(root, other[:2], other+".tmp"),        // not a digest
		filepath.Join(root, "zz", other),                    // not a fan-out directory
		filepath.Join(s.Root(), "blobs", "md5", "ab", "ab"), // not an algorithm
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, p, []byte("junk"))
	}
	if err := os.Mkdir(filepath.Join(root, other[:2], other), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	var got []berth.Digest
	if err := s.Walk(ctx, func(info berth.BlobInfo) error { got = append(got, info.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != d {
		t.Fatalf("Walk reported %v, want only %s", got, d)
	}
}

// Invalid ids never touch the file system outside the uploads directory.
func TestInvalidIDStaysInside(t *testing.T) {
	ctx := t.Context()
	outer := t.TempDir()
	s, err := New(filepath.Join(outer, "root"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(outer, "victim", "data"), []byte("precious"))
	for _, id := range []string{"../../victim", "../uploads", "..", "../../victim/"} {
		s.CreateUpload(ctx, id)
		s.AppendUpload(ctx, id, 8, bytes.NewReader([]byte("x")))
		s.CommitUpload(ctx, id, berth.DigestOf(berth.SHA256, []byte("precious")))
		s.DeleteUpload(ctx, id)
	}
	if b, err := os.ReadFile(filepath.Join(outer, "victim", "data")); err != nil || string(b) != "precious" {
		t.Fatalf("a file outside the store changed: %q, %v", b, err)
	}
	wantNoBlobs(t, s)
}

func TestCreateUploadConflict(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	if err := s.CreateUpload(ctx, "dup"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "dup", 0, []byte("kept"))
	if err := s.CreateUpload(ctx, "dup"); !berth.IsCode(err, berth.CodeConflict) {
		t.Fatalf("CreateUpload of an existing id: %v, want conflict", err)
	}
	if err := s.CreateUpload(ctx, "a/b"); !berth.IsCode(err, berth.CodeBlobUploadInvalid) {
		t.Fatalf("CreateUpload of an invalid id: %v, want blob_upload_invalid", err)
	}
	mustCommit(t, s, "dup", berth.DigestOf(berth.SHA256, []byte("kept")))
}

// crashEnv names the root a child process of TestKill works in.
const crashEnv = "BERTH_DISK_TEST_CRASH_ROOT"

// TestKill kills -9 a process in the middle of a Put and an AppendUpload: no
// partial blob is ever visible, the upload keeps what it had, and a new Store
// resumes it.
func TestKill(t *testing.T) {
	if root := os.Getenv(crashEnv); root != "" {
		crashChild(root)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	root := t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	cmd.Wait()
	if !ready {
		t.Fatal("the child process never got ready")
	}

	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	putData, upData := crashData()
	if _, err := s.Stat(ctx, berth.DigestOf(berth.SHA256, putData)); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("Stat of the blob being put when killed: %v, want blob_unknown", err)
	}
	wantNoBlobs(t, s)
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) == 0 {
		t.Fatal("no temp file was left: the kill came too late to test anything")
	}

	info, err := s.StatUpload(ctx, "killed")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size < 1<<20 || info.Size > int64(len(upData)) {
		t.Fatalf("after the kill the upload holds %d bytes, want at least the %d acknowledged", info.Size, 1<<20)
	}
	t.Logf("the killed append left %d bytes", info.Size)
	mustAppend(t, s, "killed", info.Size, upData[info.Size:])
	mustCommit(t, s, "killed", berth.DigestOf(berth.SHA256, upData))

	if err := s.CleanTemp(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantTempEmpty(t, s)
}

func crashData() (put, upload []byte) {
	return randomBytes(10, 8<<20), randomBytes(11, 8<<20)
}

// crashChild runs in the child process: it appends 1 MiB to an upload, then
// starts a Put and a second append whose bodies stall after 3 MiB, says "ready"
// and waits to be killed.
func crashChild(root string) {
	ctx := context.Background()
	s, err := New(root)
	if err != nil {
		panic(err)
	}
	putData, upData := crashData()
	if err := s.CreateUpload(ctx, "killed"); err != nil {
		panic(err)
	}
	if _, err := s.AppendUpload(ctx, "killed", 0, bytes.NewReader(upData[:1<<20])); err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go s.Put(ctx, berth.DigestOf(berth.SHA256, putData), -1, &stallingReader{r: bytes.NewReader(putData), after: 3 << 20, wg: &wg})
	go s.AppendUpload(ctx, "killed", 1<<20, &stallingReader{r: bytes.NewReader(upData[1<<20:]), after: 3 << 20, wg: &wg})
	// A stalled reader signals only after the store wrote what it had read.
	wg.Wait()
	fmt.Println("ready")
	select {}
}

// stallingReader gives after bytes, then signals wg and blocks forever.
type stallingReader struct {
	r     io.Reader
	after int
	wg    *sync.WaitGroup
	n     int
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.n >= s.after {
		s.wg.Done()
		select {}
	}
	p = p[:min(len(p), s.after-s.n)]
	n, err := s.r.Read(p)
	s.n += n
	return n, err
}

func BenchmarkPut(b *testing.B) {
	ctx := b.Context()
	s := newStore(b)
	data := randomBytes(12, 64<<20)
	d := berth.DigestOf(berth.SHA256, data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendCommit pushes 64 MiB as one streamed body and in 16 MiB chunks,
// then commits it under sha256 (from the saved state) and sha512 (re-read).
func BenchmarkAppendCommit(b *testing.B) {
	data := randomBytes(13, 64<<20)
	for _, bc := range []struct {
		name  string
		chunk int
		alg   string
	}{
		{"stream/sha256", len(data), berth.SHA256},
		{"chunks16MiB/sha256", 16 << 20, berth.SHA256},
		{"stream/sha512", len(data), berth.SHA512},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			s := newStore(b)
			d := berth.DigestOf(bc.alg, data)
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("bench-%d", i)
				if err := s.CreateUpload(ctx, id); err != nil {
					b.Fatal(err)
				}
				for off := 0; off < len(data); off += bc.chunk {
					// An HTTP body arrives in small reads.
					r := iotest.HalfReader(bytes.NewReader(data[off : off+bc.chunk]))
					if _, err := s.AppendUpload(ctx, id, int64(off), r); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.CommitUpload(ctx, id, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Helpers.

func mustAppend(t *testing.T, s *Store, id string, offset int64, data []byte) {
	t.Helper()
	n, err := s.AppendUpload(t.Context(), id, offset, bytes.NewReader(data))
	if err != nil || n != offset+int64(len(data)) {
		t.Fatalf("AppendUpload %d bytes at %d = %d, %v", len(data), offset, n, err)
	}
}

func mustCommit(t *testing.T, s *Store, id string, d berth.Digest) {
	t.Helper()
	if _, err := s.CommitUpload(t.Context(), id, d); err != nil {
		t.Fatalf("CommitUpload %s: %v", id, err)
	}
	if _, err := s.Stat(t.Context(), d); err != nil {
		t.Fatalf("Stat after commit: %v", err)
	}
}

func readBlob(t *testing.T, s *Store, d berth.Digest) []byte {
	t.Helper()
	rc, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantNoBlobs(t *testing.T, s *Store) {
	t.Helper()
	err := s.Walk(t.Context(), func(info berth.BlobInfo) error {
		return fmt.Errorf("Walk reported %s", info.Digest)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func wantUploads(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	var got []string
	if err := s.WalkUploads(t.Context(), func(info berth.UploadInfo) error { got = append(got, info.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("WalkUploads reported %v, want %v", got, ids)
	}
}

func wantTempEmpty(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("tmp holds %d entries, first %s", len(entries), entries[0].Name())
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// An upload below stateFileMin keeps its hash state in memory only: no state
// file is written, the commit needs none, and nothing is left in memory once
// the upload is committed or deleted.
func TestSmallUploadStateInMemory(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := randomBytes(8, 1024)
	for _, id := range []string{"kept", "dropped"} {
		if err := s.CreateUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, id, 0, data)
		if _, err := os.Lstat(filepath.Join(s.Root(), "uploads", id, stateFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a 1 KiB upload wrote a state file: %v", err)
		}
	}
	mustCommit(t, s, "kept", berth.DigestOf(berth.SHA256, data))
	if err := s.DeleteUpload(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}
	if n := len(s.states.m); n != 0 {
		t.Fatalf("%d hash states kept after the uploads ended", n)
	}
}

// Put tells a body with a Verified method that it matched its size and
// digest, before it syncs the blob; a body that did not is never told.
func TestPutCallsVerified(t *testing.T) {
	s := newStore(t)
	data := randomBytes(12, 1<<20+5)
	d := berth.DigestOf(berth.SHA256, data)
	for _, tc := range []struct {
		name string
		d    berth.Digest
		size int64
		want int
	}{
		{"other digest", berth.DigestOf(berth.SHA256, data[1:]), -1, 0},
		{"other size", d, int64(len(data)) + 1, 0},
		{"matching", d, int64(len(data)), 1},
	} {
		r := &verifiedReader{Reader: bytes.NewReader(data)}
		_, err := s.Put(t.Context(), tc.d, tc.size, r)
		if r.calls != tc.want || (err == nil) != (tc.want == 1) {
			t.Errorf("%s: Verified called %d times, Put: %v", tc.name, r.calls, err)
		}
	}
}

type verifiedReader struct {
	io.Reader
	calls int
}

func (v *verifiedReader) Verified() { v.calls++ }

// TestFanOutDirectoryRemovedBehindTheStore checks that a blob still lands when
// its blobs/ALG/XX directory, which the store remembers having made, was
// removed by something else meanwhile: by Put and by an upload's commit.
func TestFanOutDirectoryRemovedBehindTheStore(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Contents whose digests share a fan-out directory.
	var same [][]byte
	seen := map[string][][]byte{}
	for i := 0; len(same) < 3; i++ {
		b := fmt.Appendf(nil, "blob %d", i)
		dir := filepath.Dir(s.blobPath(berth.DigestOf(berth.SHA256, b)))
		seen[dir] = append(seen[dir], b)
		if len(seen[dir]) == 3 {
			same = seen[dir]
		}
	}
	dir := filepath.Dir(s.blobPath(berth.DigestOf(berth.SHA256, same[0])))
	if _, err := s.Put(ctx, berth.DigestOf(berth.SHA256, same[0]), int64(len(same[0])), bytes.NewReader(same[0])); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	d1 := berth.DigestOf(berth.SHA256, same[1])
	if _, err := s.Put(ctx, d1, int64(len(same[1])), bytes.NewReader(same[1])); err != nil {
		t.Fatalf("Put after its directory was removed: %v", err)
	}
	if _, err := s.Stat(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	d2 := berth.DigestOf(berth.SHA256, same[2])
	if err := s.CreateUpload(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, "u1", 0, bytes.NewReader(same[2])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, "u1", d2); err != nil {
		t.Fatalf("commit after its directory was removed: %v", err)
	}
	if _, err := s.Stat(ctx, d2); err != nil {
		t.Fatal(err)
	}
}

// TestCopyHashedSizes checks that bodies on each side of the small first
// buffer and of the large ones are written and hashed whole, arriving in
// reads of any size, and that the bytes returned count them all.
func TestCopyHashedSizes(t *testing.T) {
	for _, size := range []int{0, 1, smallBufferSize - 1, smallBufferSize, smallBufferSize + 1,
		smallBufferSize + bufferSize, smallBufferSize + bufferSize + 1, 3*bufferSize + 5} {
		data := randomBytes(uint64(size), size)
		path := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := copyHashed(t.Context(), f, 0, h, iotest.HalfReader(bytes.NewReader(data)))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != int64(size) {
			t.Fatalf("size %d: copied %d, %v", size, n, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(data)
		if !bytes.Equal(got, data) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("size %d: the file or the hash differs from the body", size)
		}
	}
}
