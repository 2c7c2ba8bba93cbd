package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/blobtest"
	"github.com/berth-dev/berth/internal/s3test"
)

func TestStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Store { return newTestStore(t) })
}

func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func mustAppend(t *testing.T, s *Store, id string, offset int64, data []byte) {
	t.Helper()
	n, err := s.AppendUpload(t.Context(), id, offset, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("AppendUpload %d bytes at %d: %v", len(data), offset, err)
	}
	if want := offset + int64(len(data)); n != want {
		t.Fatalf("AppendUpload %d bytes at %d = %d, want %d", len(data), offset, n, want)
	}
}

func readAll(t *testing.T, s *Store, d berth.Digest) []byte {
	t.Helper()
	rc, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open %s: %v", d.Short(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const mib = 1 << 20

// Chunks of any size work: around S3's 5 MiB least part size, single bytes
// between them, and chunks larger than the part size.
func TestUploadChunkSizes(t *testing.T) {
	sizes := [][]int{
		{1, 1, 1},
		{5*mib - 1, 1, 5*mib - 1},
		{5 * mib, 5 * mib, 1},
		{5*mib + 1, 1, 5*mib + 1, 5 * mib},
		{17 * mib, 3, 17 * mib},
		{1, 5*mib - 1, 17 * mib, 2, 5*mib + 1},
	}
	s := newTestStore(t)
	for i, chunks := range sizes {
		for _, alg := range []string{berth.SHA256, berth.SHA512} {
			total := 0
			for _, n := range chunks {
				total += n
			}
			data := randomBytes(uint64(i*2+len(alg)), total)
			id := "chunks-" + alg + "-" + string(rune('a'+i))
			if err := s.CreateUpload(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			off := 0
			for _, n := range chunks {
				mustAppend(t, s, id, int64(off), data[off:off+n])
				off += n
			}
			d := berth.DigestOf(alg, data)
			info, err := s.CommitUpload(t.Context(), id, d)
			if err != nil {
				t.Fatalf("chunks %v under %s: CommitUpload: %v", chunks, alg, err)
			}
			if info.Size != int64(total) {
				t.Fatalf("chunks %v: committed size %d, want %d", chunks, info.Size, total)
			}
			if got := readAll(t, s, d); !bytes.Equal(got, data) {
				t.Fatalf("chunks %v under %s: the blob differs from the chunks", chunks, alg)
			}
		}
	}
	if ks := keys(t, s); len(ks) != 2*len(sizes) {
		t.Fatalf("left after the commits: %v, want only the %d blobs", ks, 2*len(sizes))
	}
}

// Two Stores on one bucket and prefix stand for two replicas: an upload begun
// on one, with a chunk streamed as a multipart upload, continues and commits
// on the other; what one writes the other reads.
func TestUploadAcrossReplicas(t *testing.T) {
	cfg := config(t)
	a, b := openStore(t, cfg), openStore(t, cfg)
	ctx := t.Context()
	data := randomBytes(7, 2*DefaultPartSize+3*mib+5)
	const id = "split-across-replicas"
	if err := a.CreateUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a, id, 0, data[:3*mib])                            // a small chunk
	mustAppend(t, b, id, 3*mib, data[3*mib:3*mib+2*DefaultPartSize]) // a multipart one
	if info, err := a.StatUpload(ctx, id); err != nil || info.Size != 3*mib+2*DefaultPartSize {
		t.Fatalf("StatUpload on A after B appended: %+v, %v", info, err)
	}
	if _, err := a.AppendUpload(ctx, id, 3*mib, strings.NewReader("stale")); !berth.IsCode(err, berth.CodeRangeInvalid) {
		t.Fatalf("append on A at an offset B has passed: %v, want range_invalid", err)
	}
	mustAppend(t, a, id, 3*mib+2*DefaultPartSize, data[3*mib+2*DefaultPartSize:])
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := b.CommitUpload(ctx, id, d); err != nil {
		t.Fatalf("CommitUpload on B: %v", err)
	}
	if got := readAll(t, a, d); !bytes.Equal(got, data) {
		t.Fatal("A reads other bytes than were uploaded through A and B")
	}
	if _, err := a.StatUpload(ctx, id); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("StatUpload on A after B committed: %v", err)
	}
}

// A sha256 commit uses the hash state the appends saved, and still refuses
// content that does not match; without the state it reads the data. A first
// append under stateFree saves no state; the next one, on another replica
// (which does not remember the state either), hashes its data again. The
// commits run on a third replica, which remembers nothing.
func TestCommitHashState(t *testing.T) {
	cfg := config(t)
	s, r := openStore(t, cfg), openStore(t, cfg)
	ctx := t.Context()
	data := randomBytes(9, 6*mib+7)
	for _, keepState := range []bool{true, false} {
		id := "state-" + map[bool]string{true: "kept", false: "lost"}[keepState]
		if err := s.CreateUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, id, 0, data[:1000])
		if u, err := s.loadUpload(ctx, id); err != nil || len(u.states) != 0 {
			t.Fatalf("an upload of 1000 bytes saved states %v (%v); it is under stateFree", u.states, err)
		}
		// The next append reads the first 1000 bytes again to continue the hash.
		mustAppend(t, r, id, 1000, data[1000:])
		s = openStore(t, cfg)
		u, err := s.loadUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.loadState(ctx, u, u.size) == nil {
			t.Fatal("no usable sha256 state after two appends")
		}
		if !keepState {
			if err := s.removeKeys(ctx, []string{u.states[u.size]}); err != nil {
				t.Fatal(err)
			}
		}
		wrong := berth.DigestOf(berth.SHA256, data[1:])
		if _, err := s.CommitUpload(ctx, id, wrong); !berth.IsCode(err, berth.CodeDigestInvalid) {
			t.Fatalf("commit under a wrong digest (state kept: %v): %v", keepState, err)
		}
		d := berth.DigestOf(berth.SHA256, data)
		if _, err := s.CommitUpload(ctx, id, d); err != nil {
			t.Fatalf("commit (state kept: %v): %v", keepState, err)
		}
		if !bytes.Equal(readAll(t, s, d), data) {
			t.Fatal("committed blob differs")
		}
	}
}

// A digest mismatch at commit leaves no blob and no object at any blob key,
// and the upload as it was; a Put that fails leaves nothing either.
func TestMismatchLeavesNothing(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	data := randomBytes(11, 2*DefaultPartSize+1) // several parts
	const id = "mismatch"
	if err := s.CreateUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, id, 0, data[:5])
	mustAppend(t, s, id, 5, data[5:])
	before := keys(t, s)
	wrong := berth.DigestOf(berth.SHA512, data[:len(data)-1])
	if _, err := s.CommitUpload(ctx, id, wrong); !berth.IsCode(err, berth.CodeDigestInvalid) {
		t.Fatalf("CommitUpload under a wrong digest: %v", err)
	}
	if _, err := s.Put(ctx, wrong, -1, bytes.NewReader(data)); !berth.IsCode(err, berth.CodeDigestInvalid) {
		t.Fatalf("Put under a wrong digest: %v", err)
	}
	if after := keys(t, s); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("keys before the failed commit and put: %v, after: %v", before, after)
	}
	for _, k := range keys(t, s) {
		if strings.HasPrefix(k, "blobs/") {
			t.Fatalf("a blob key exists after a mismatch: %s", k)
		}
	}
	n := 0
	for mu := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if mu.Err != nil {
			t.Fatal(mu.Err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("%d multipart uploads were left open", n)
	}
	if info, err := s.StatUpload(ctx, id); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("the upload after a mismatch: %+v, %v", info, err)
	}
}

// A presigned URL serves the blob to a plain GET, with no Authorization
// header; without presign there is no URL.
func TestBlobURL(t *testing.T) {
	cfg := config(t)
	off := openStore(t, cfg)
	data := randomBytes(13, 100_000)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := off.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if u, err := off.BlobURL(t.Context(), d); u != "" || err != nil {
		t.Fatalf("BlobURL with presign off = %q, %v; want none", u, err)
	}
	cfg.Presign = true
	on := openStore(t, cfg)
	u, err := on.BlobURL(t.Context(), d)
	if err != nil || u == "" {
		t.Fatalf("BlobURL: %q, %v", u, err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("the request carries an Authorization header")
	}
	wantGET(t, req, data)
	if strings.Contains(u, s3test.SecretKey) {
		t.Fatal("the URL holds the secret key")
	}
	// Anyone may read with the URL, but only that blob.
	other := strings.Replace(u, d.Encoded(), berth.DigestOf(berth.SHA256, nil).Encoded(), 1)
	resp2, err := http.Get(other)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode == http.StatusOK {
		t.Fatal("a presigned URL edited to name another key was accepted")
	}
}

// wantGET sends req, a GET of a presigned URL, and fails the test unless it
// answers 200 with want.
func wantGET(t *testing.T, req *http.Request, want []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET of the presigned URL: %s, %d bytes", resp.Status, len(body))
	}
}

// CleanTemp aborts abandoned multipart uploads and removes the objects of
// uploads whose marker is gone, once they are older than the cutoff; live
// uploads and blobs stay.
func TestCleanTemp(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	data := randomBytes(17, 1000)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := s.Put(ctx, d, -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "live", 0, data)
	// A delete that stopped after the marker, and a crashed multipart Put.
	if err := s.CreateUpload(ctx, "halfgone"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "halfgone", 0, data)
	if err := s.removeKeys(ctx, []string{s.uploadPrefix("halfgone") + markerName}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.core.NewMultipartUpload(ctx, s.bucket, s.blobKey(berth.DigestOf(berth.SHA256, data[1:])), minioPutOptions()); err != nil {
		t.Fatal(err)
	}

	past := mustNow(t, s).Add(-time.Hour)
	if err := s.CleanTemp(past); err != nil {
		t.Fatal(err)
	}
	if n := len(keys(t, s)); n != 1+2+1 { // blob; live marker and data; debris (no states: the uploads are under stateFree)
		t.Fatalf("CleanTemp with a past cutoff removed something: %v", keys(t, s))
	}
	if err := s.CleanTemp(mustNow(t, s).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(keys(t, s), " ")
	for _, k := range []string{"halfgone"} {
		if strings.Contains(got, k) {
			t.Fatalf("CleanTemp left %s: %s", k, got)
		}
	}
	for mu := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		t.Fatalf("CleanTemp left a multipart upload of %s (%v)", mu.Key, mu.Err)
	}
	if info, err := s.StatUpload(ctx, "live"); err != nil || info.Size != 1000 {
		t.Fatalf("live upload after CleanTemp: %+v, %v", info, err)
	}
	if _, err := s.Stat(ctx, d); err != nil {
		t.Fatalf("blob after CleanTemp: %v", err)
	}
}

func minioPutOptions() minio.PutObjectOptions { return minio.PutObjectOptions{} }

// mustNow is the service's idea of now: the modification time of an object
// written now, so that cutoffs do not depend on the two clocks agreeing.
func mustNow(t *testing.T, s *Store) time.Time {
	t.Helper()
	key := s.prefix + "clock"
	if _, err := s.core.PutObject(context.Background(), s.bucket, key, strings.NewReader("x"), 1, "", "", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	oi, err := s.client.StatObject(context.Background(), s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.removeKeys(context.Background(), []string{key}); err != nil {
		t.Fatal(err)
	}
	return oi.LastModified
}

// Of two appends at one offset on two replicas, one streamed as a multipart
// upload and one in a single PUT, in either order of finishing, exactly one
// wins and the other gets range_invalid; the upload holds the winner's bytes.
func TestConcurrentAppendAcrossReplicas(t *testing.T) {
	cfg := config(t)
	stores := []*Store{openStore(t, cfg), openStore(t, cfg)}
	ctx := t.Context()
	for round := range 4 {
		chunks := [][]byte{randomBytes(uint64(100+round), DefaultPartSize+mib), randomBytes(uint64(200+round), 1000)}
		id := fmt.Sprintf("race-%d", round)
		if err := stores[0].CreateUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				_, errs[i] = stores[(i+round)%2].AppendUpload(ctx, id, 0, bytes.NewReader(chunks[i]))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Fatalf("round %d: both appends at offset 0 succeeded", round)
			case !berth.IsCode(err, berth.CodeRangeInvalid):
				t.Fatalf("round %d: append #%d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither append succeeded: %v", round, errs)
		}
		d := berth.DigestOf(berth.SHA256, chunks[winner])
		if _, err := stores[1-round%2].CommitUpload(ctx, id, d); err != nil {
			t.Fatalf("round %d: commit of the winner's bytes: %v", round, err)
		}
	}
}

// The assembly reads and copies only the data objects it verified: a data
// object replaced after the listing (which no append does, but a bug or an
// operator might) fails the commit instead of entering the blob.
func TestAssemblePinsETags(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	for i, chunks := range [][]int{{1000}, {6 * mib, 1000}, {1000, 6 * mib}} {
		id := fmt.Sprintf("pinned-%d", i)
		if err := s.CreateUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		off := 0
		for _, n := range chunks {
			mustAppend(t, s, id, int64(off), randomBytes(uint64(300+i), n))
			off += n
		}
		u, err := s.loadUpload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range u.segs {
			swapped := randomBytes(uint64(400+i), int(sg.size))
			if _, err := s.core.PutObject(ctx, s.bucket, sg.key, bytes.NewReader(swapped), sg.size, "", "", minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		key := s.prefix + "blobs/pinned"
		if _, err := s.assemble(ctx, u, key); err == nil {
			t.Fatalf("chunks %v: assembling data objects replaced since the listing succeeded", chunks)
		}
		if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); !isNotFound(err) {
			t.Fatalf("chunks %v: an object exists at the target after the failed assembly: %v", chunks, err)
		}
	}
}

// Two replicas pushing while garbage collection deletes: every commit and
// delete removes objects, and the posix backend of versitygw then removes the
// folders they leave empty (uploads/, blobs/sha256/XX/, up to the bucket)
// while another request creates an object below them, which fails the create
// when the removal falls between its making the folders and the file. Half
// the workers push through uploads (a marker, data, a commit by copy), half
// put blobs whole; each deletes what it made. Every request must succeed.
// Before the retry of such creates this failed several times in each run
// (checked with createAttempts = 1).
func TestConcurrentPushAndDelete(t *testing.T) {
	cfg := config(t)
	stores := []*Store{openStore(t, cfg), openStore(t, cfg)}
	ctx := t.Context()
	const workers, rounds = 8, 100
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		wg.Go(func() {
			s := stores[w%2]
			for i := range rounds {
				data := randomBytes(uint64(w*rounds+i), 100)
				d := berth.DigestOf(berth.SHA256, data)
				var err error
				if w%2 == 0 {
					id := fmt.Sprintf("push-%d-%d", w, i)
					err = s.CreateUpload(ctx, id)
					if err == nil {
						_, err = s.AppendUpload(ctx, id, 0, bytes.NewReader(data))
					}
					if err == nil {
						_, err = s.CommitUpload(ctx, id, d)
					}
				} else {
					_, err = s.Put(ctx, d, int64(len(data)), bytes.NewReader(data))
				}
				if err == nil {
					err = s.Delete(ctx, d)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("worker %d, round %d: %w", w, i, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d pushes failed, the first: %v", len(errs), workers*rounds, errs[0])
	}
}

// The retry of a create refused for a removed folder is bounded: a key that
// really is a folder of other keys (which berth never makes) fails every
// attempt, and the write reports the service's refusal instead of waiting on.
func TestCreateOverFolderFails(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	data := randomBytes(23, 100)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := s.core.PutObject(ctx, s.bucket, s.blobKey(d)+"/below", strings.NewReader("x"), 1, "", "", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.putBytes(ctx, s.blobKey(d), data, minio.PutObjectOptions{})
	if !isFolderRemoved(err) {
		t.Fatalf("PUT over a folder: %v, want ExistingObjectIsDirectory", err)
	}
	if _, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err == nil {
		t.Fatal("Put over a folder succeeded")
	}
}
