package s3

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/blobtest"
)

// newPointingStore returns a store that points to the data of every
// one-object upload, however small, instead of copying it.
func newPointingStore(t testing.TB) *Store {
	s := newTestStore(t)
	s.pointerMin = 1
	return s
}

// The shared suite again, with every committed upload of one data object a
// pointer: Stat, Open, Seek, Walk, Delete and a commit over an existing blob
// behave as for a blob at its own key.
func TestStorePointing(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Store { return newPointingStore(t) })
}

// pushPointed commits data through a one-append upload id, which the store
// points to.
func pushPointed(t *testing.T, s *Store, id string, data []byte) berth.Digest {
	t.Helper()
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, id, 0, data)
	info, err := s.CommitUpload(t.Context(), id, d)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("CommitUpload size %d, want %d", info.Size, len(data))
	}
	return d
}

// A commit of one data object writes no copy of it: the blob's key holds an
// empty pointer, the data stays with a kept marker, the upload's marker and
// states go; the blob reads, stats and walks with its own size.
func TestCommitPoints(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(41, 300_000) // past stateFree: a state is saved and removed
	d := pushPointed(t, s, "big", data)

	data0 := "uploads/big/" + dataDir + offsetName(0)
	want := []string{s.blobKey(d)[len(s.prefix):], "uploads/big/" + keptName(d), data0}
	got := keys(t, s)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("keys after the commit: %v, want %v", got, want)
	}
	if oi := stat(t, s, s.blobKey(d)); oi.Size != 0 {
		t.Fatalf("the blob's key holds %d bytes, want an empty pointer", oi.Size)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the pointed blob reads other bytes")
	}
	if info, err := s.Stat(t.Context(), d); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Stat: %+v, %v", info, err)
	}
	var walked []berth.BlobInfo
	if err := s.Walk(t.Context(), func(b berth.BlobInfo) error { walked = append(walked, b); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0].Digest != d || walked[0].Size != int64(len(data)) {
		t.Fatalf("Walk: %+v", walked)
	}
	if _, err := s.StatUpload(t.Context(), "big"); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("StatUpload after the commit: %v, want blob_upload_unknown", err)
	}

	// Nothing that cleans uploads removes the data while the pointer names it.
	if err := s.CleanTemp(mustNow(t, s).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUpload(t.Context(), "big"); err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the pointed blob changed after CleanTemp and DeleteUpload")
	}

	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Fatalf("keys after Delete: %v", got)
	}
}

// A commit that stopped after the pointer was written, leaving the upload's
// marker: the upload may be committed again (it is the same blob), and
// deleting the upload, as the stale-upload collection does, keeps the data.
func TestCommitStoppedAfterPointer(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(42, 100_000)
	d := pushPointed(t, s, "once", data)
	recreateMarker(t, s, "once")

	if _, err := s.CommitUpload(t.Context(), "once", d); err != nil {
		t.Fatalf("the commit sent again: %v", err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the blob changed after the commit was sent again")
	}
	recreateMarker(t, s, "once")
	if err := s.DeleteUpload(t.Context(), "once"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatUpload(t.Context(), "once"); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("StatUpload after DeleteUpload: %v", err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("DeleteUpload removed the data a pointer names")
	}
}

// A Delete that stopped after removing the pointer leaves data no pointer
// names: CleanTemp removes it once it is past the cutoff.
func TestDeleteStoppedAfterPointer(t *testing.T) {
	s := newPointingStore(t)
	d := pushPointed(t, s, "gone", randomBytes(43, 100_000))
	if err := s.removeKeys(t.Context(), []string{s.blobKey(d)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CleanTemp(mustNow(t, s).Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(keys(t, s)) != 2 {
		t.Fatalf("CleanTemp with a past cutoff removed something: %v", keys(t, s))
	}
	if err := s.CleanTemp(mustNow(t, s).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Fatalf("keys left: %v", got)
	}
}

// A second upload of a stored blob leaves the stored one as it is and
// removes itself whole; a pointer whose data is gone is replaced.
func TestCommitOverPointer(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(44, 100_000)
	d := pushPointed(t, s, "first", data)
	pushPointed(t, s, "second", data)
	for _, k := range keys(t, s) {
		if strings.HasPrefix(k, "uploads/second/") {
			t.Fatalf("the second upload left %s", k)
		}
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the blob changed")
	}

	// The first data object lost (a bucket edited by hand, or a berth
	// older than pointers cleaning it): the next commit of the blob writes
	// a new pointer.
	if err := s.removeKeys(t.Context(), []string{s.prefix + "uploads/first/" + dataDir + offsetName(0)}); err != nil {
		t.Fatal(err)
	}
	pushPointed(t, s, "third", data)
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the blob does not read after a commit over a pointer to missing data")
	}
}

// A DeleteUpload racing the commit of the same upload never leaves a
// pointer naming data it removed: a delete that listed the upload before
// the commit finished lists it again once its marker is gone, and a commit
// that finds its marker gone before it writes its pointer fails.
func TestCommitRacingDeleteUpload(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(46, 100_000)
	d := berth.DigestOf(berth.SHA256, data)

	// The delete listed first; the commit finished before it went on.
	if err := s.CreateUpload(t.Context(), "late-delete"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "late-delete", 0, data)
	stale, err := s.loadUpload(t.Context(), "late-delete")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(t.Context(), "late-delete", d); err != nil {
		t.Fatal(err)
	}
	if err := s.removeUpload(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("a delete that listed the upload before its commit removed the blob's data")
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}

	// The commit listed first; the delete removed the marker before the
	// commit wrote its pointer.
	if err := s.CreateUpload(t.Context(), "early-delete"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "early-delete", 0, data)
	u, err := s.loadUpload(t.Context(), "early-delete")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.removeKeys(t.Context(), []string{s.uploadPrefix("early-delete") + markerName}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.point(t.Context(), u, u.segs[0], d); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("a commit whose upload was deleted meanwhile: %v, want blob_upload_unknown", err)
	}
	if _, err := s.Stat(t.Context(), d); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("the undone commit left the blob: %v", err)
	}
}

// A DeleteUpload of an upload at any step of its pointing commit, with
// another upload of the same bytes committed right after it: the blob that
// second commit stored reads, whatever the first commit answers, and once
// the blob is deleted nothing is left. (Before, a commit that found its
// marker gone after writing its pointer took the pointer back, though the
// second commit had found it and relied on it.)
func TestDeleteUploadAtEveryStepOfACommit(t *testing.T) {
	for _, at := range []string{"kept", "checked", "pointed"} {
		t.Run(at, func(t *testing.T) {
			s := newPointingStore(t)
			data := randomBytes(50, 100_000)
			d := berth.DigestOf(berth.SHA256, data)
			for _, id := range []string{"first", "second"} {
				if err := s.CreateUpload(t.Context(), id); err != nil {
					t.Fatal(err)
				}
				mustAppend(t, s, id, 0, data)
			}
			var reached bool
			var secondErr error
			s.onStep = func(step string) {
				if step != at || reached {
					return
				}
				reached = true
				if err := s.DeleteUpload(t.Context(), "first"); err != nil {
					t.Errorf("DeleteUpload at %s: %v", at, err)
				}
				_, secondErr = s.CommitUpload(t.Context(), "second", d)
			}
			_, firstErr := s.CommitUpload(t.Context(), "first", d)
			s.onStep = nil
			if !reached {
				t.Fatalf("the commit never reached step %s", at)
			}
			if firstErr != nil && !berth.IsCode(firstErr, berth.CodeBlobUploadUnknown) {
				t.Fatalf("the first commit: %v, want success or blob_upload_unknown", firstErr)
			}
			if secondErr != nil {
				t.Fatalf("the second commit: %v", secondErr)
			}
			if b := readAll(t, s, d); !bytes.Equal(b, data) {
				t.Fatal("the blob the second commit stored does not read")
			}
			if err := s.CleanTemp(mustNow(t, s).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if b := readAll(t, s, d); !bytes.Equal(b, data) {
				t.Fatal("CleanTemp removed the data of a stored blob")
			}
			if err := s.Delete(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			if err := s.CleanTemp(mustNow(t, s).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := keys(t, s); len(got) != 0 {
				t.Fatalf("keys left after Delete and CleanTemp: %v", got)
			}
		})
	}
}

// Two commits of one upload under one digest (a PUT sent again while the
// first is running): the second listed the upload before the first removed
// its marker, finds the first's pointer and the marker gone, and fails
// without undoing the first, whose blob stays.
func TestRetriedCommitKeepsTheFirst(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(49, 100_000)
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), "retry"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "retry", 0, data)
	second, err := s.loadUpload(t.Context(), "retry")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(t.Context(), "retry", d); err != nil {
		t.Fatalf("the first commit: %v", err)
	}
	if _, err := s.point(t.Context(), second, second.segs[0], d); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Fatalf("the second commit: %v, want blob_upload_unknown", err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("the first commit's blob does not read after the second failed")
	}
}

// One upload committed under two digests at once (sha256 and sha512 of the
// same bytes) has two pointers to one data object: deleting one blob keeps
// the data the other names.
func TestDeleteOneOfTwoPointers(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(47, 100_000)
	d256 := pushPointed(t, s, "twice", data)
	recreateMarker(t, s, "twice") // the second commit listed the upload before the first removed its marker
	d512 := berth.DigestOf(berth.SHA512, data)
	if _, err := s.CommitUpload(t.Context(), "twice", d512); err != nil {
		t.Fatalf("the second commit: %v", err)
	}
	if err := s.Delete(t.Context(), d512); err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, s, d256); !bytes.Equal(b, data) {
		t.Fatal("deleting one pointer removed the data another names")
	}
	if err := s.Delete(t.Context(), d256); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Fatalf("keys left: %v", got)
	}
}

// Pointers are written only when the configuration turns them on: a berth
// older than them would serve one as an empty blob.
func TestPointersAreOptIn(t *testing.T) {
	cfg := config(t)
	off := openStore(t, cfg)
	cfg.Pointers = true
	on := openStore(t, cfg)
	data := randomBytes(48, pointerMin)
	d := berth.DigestOf(berth.SHA256, data)
	for _, tc := range []struct {
		name   string
		s      *Store
		stored int64 // bytes at the blob's key
	}{{"off", off, pointerMin}, {"on", on, 0}} {
		pushPointed(t, tc.s, "opt-"+tc.name, data)
		if oi := stat(t, tc.s, tc.s.blobKey(d)); oi.Size != tc.stored {
			t.Errorf("pointers %s: the blob's key holds %d bytes, want %d", tc.name, oi.Size, tc.stored)
		}
		if err := tc.s.Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// A presigned URL of a pointed blob is that of its data.
func TestBlobURLPointed(t *testing.T) {
	cfg := config(t)
	cfg.Presign = true
	s := openStore(t, cfg)
	s.pointerMin = 1
	data := randomBytes(45, 100_000)
	d := pushPointed(t, s, "url", data)
	u, err := s.BlobURL(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantGET(t, req, data)
}

func recreateMarker(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, err := s.putBytes(t.Context(), s.uploadPrefix(id)+markerName, nil, minioPutOptions()); err != nil {
		t.Fatal(err)
	}
}

func stat(t *testing.T, s *Store, key string) minio.ObjectInfo {
	t.Helper()
	oi, err := s.client.StatObject(t.Context(), s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return oi
}

// A DeleteUpload right after a commit checked its upload (before the
// pointer is written) leaves the data, which the commit then points to: a
// commit that answers success has a blob that reads. (Without the delete
// keeping an upload's data once it holds a kept marker, the pointer named
// removed data.)
func TestDeleteUploadAfterTheCheckKeepsTheData(t *testing.T) {
	s := newPointingStore(t)
	data := randomBytes(51, 100_000)
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), "only"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "only", 0, data)
	s.onStep = func(step string) {
		if step == "checked" {
			if err := s.DeleteUpload(t.Context(), "only"); err != nil {
				t.Errorf("DeleteUpload: %v", err)
			}
		}
	}
	_, err := s.CommitUpload(t.Context(), "only", d)
	s.onStep = nil
	if err != nil {
		t.Fatalf("the commit: %v", err)
	}
	if b := readAll(t, s, d); !bytes.Equal(b, data) {
		t.Fatal("a commit answered success, and its blob does not read")
	}
}
