package s3

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

// requestCounter is a transport that counts the S3 requests a store sends,
// by operation.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[operation(r)]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the counts so far and starts again from none.
func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// operation names the S3 API operation r is.
func operation(r *http.Request) string {
	q := r.URL.Query()
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	switch r.Method {
	case http.MethodPut:
		switch {
		case copySource && q.Has("partNumber"):
			return "UploadPartCopy"
		case copySource:
			return "CopyObject"
		case q.Has("partNumber"):
			return "UploadPart"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		case q.Has("delete"):
			return "DeleteObjects"
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	case http.MethodGet:
		if q.Has("list-type") || q.Has("prefix") {
			return "ListObjects"
		}
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	}
	return r.Method
}

// newCountedStore returns a store on a fresh prefix whose requests c counts,
// with the least part size, so that a body of a few MiB spans parts.
func newCountedStore(t *testing.T) (*Store, *requestCounter) {
	t.Helper()
	c := &requestCounter{n: map[string]int{}}
	cfg := config(t)
	cfg.transport = c
	cfg.PartSize = minPartSize
	s := openStore(t, cfg)
	c.take()
	return s, c
}

// An append whose length is announced (a PATCH with Content-Length, as
// crane sends a layer) is one PUT of that length, however many parts it
// spans: no multipart upload, whose parts a service such as versitygw
// writes once and then again to assemble them.
func TestSizedAppendIsOnePut(t *testing.T) {
	s, c := newCountedStore(t)
	data := randomBytes(21, 2*minPartSize+12345)
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), "sized"); err != nil {
		t.Fatal(err)
	}
	c.take()
	n, err := s.AppendUpload(t.Context(), "sized", 0, &berth.SizedReader{R: bytes.NewReader(data), N: int64(len(data))})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("AppendUpload = %d, %v; want %d", n, err, len(data))
	}
	// The listing, the data, and the hash state saved beside it.
	want := map[string]int{"ListObjects": 1, "PutObject": 2}
	if got := c.take(); !maps.Equal(got, want) {
		t.Errorf("requests of the append: %v, want %v", got, want)
	}
	if _, err := s.CommitUpload(t.Context(), "sized", d); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, d); !bytes.Equal(got, data) {
		t.Errorf("the blob holds %d bytes, not the %d appended", len(got), len(data))
	}
	// The same body unsized still streams as a multipart upload.
	if err := s.CreateUpload(t.Context(), "unsized"); err != nil {
		t.Fatal(err)
	}
	c.take()
	mustAppend(t, s, "unsized", 0, data)
	if got := c.take(); got["CreateMultipartUpload"] != 1 || got["UploadPart"] != 3 {
		t.Errorf("requests of an unsized append: %v, want a multipart upload of 3 parts", got)
	}
}

// A sized body that holds fewer or more bytes than announced fails the
// append, and the upload keeps none of it: the PUT never completes.
func TestSizedAppendOfWrongLength(t *testing.T) {
	s := newTestStore(t)
	data := randomBytes(22, minPartSize+1)
	announced := int64(len(data)) - 1
	for _, tc := range []struct {
		name string
		body []byte
		code berth.Code
		err  error
	}{
		{"shorter", data[:announced-1], "", io.ErrUnexpectedEOF},
		{"longer", data, berth.CodeSizeInvalid, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "wrong-" + tc.name
			if err := s.CreateUpload(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, s, id, 0, data[:100])
			_, err := s.AppendUpload(t.Context(), id, 100, &berth.SizedReader{R: bytes.NewReader(tc.body), N: announced})
			switch {
			case err == nil:
				t.Fatal("AppendUpload of a body of the wrong length succeeded")
			case tc.code != "" && !berth.IsCode(err, tc.code):
				t.Errorf("AppendUpload: %v, want %s", err, tc.code)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("AppendUpload: %v, want %v in the chain", err, tc.err)
			}
			info, err := s.StatUpload(t.Context(), id)
			if err != nil || info.Size != 100 {
				t.Errorf("StatUpload = %d, %v; want the 100 bytes before", info.Size, err)
			}
			if err := s.DeleteUpload(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		})
	}
	if ks := keys(t, s); len(ks) != 0 {
		t.Errorf("keys left: %v", ks)
	}
}

// A commit sends what it must and no more: the listing, the copy to the
// blob's key, and one deletion of the upload's objects, marker included. The
// hash state comes from the store that appended (a small upload saves none);
// a commit on another replica reads the data back to hash it.
func TestCommitRequests(t *testing.T) {
	s, c := newCountedStore(t)
	data := randomBytes(23, 1000)
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), "small"); err != nil {
		t.Fatal(err)
	}
	// The marker alone: ids are fresh, so nothing is listed first.
	if got, want := c.take(), map[string]int{"PutObject": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of CreateUpload: %v, want %v", got, want)
	}
	mustAppend(t, s, "small", 0, data)
	c.take()
	if _, err := s.CommitUpload(t.Context(), "small", d); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ListObjects": 1, "CopyObject": 1, "DeleteObjects": 1}
	if got := c.take(); !maps.Equal(got, want) {
		t.Errorf("requests of the commit: %v, want %v", got, want)
	}
	if ks := keys(t, s); len(ks) != 1 {
		t.Errorf("keys after the commit: %v, want the blob's alone", ks)
	}

	// The same on a replica that did not append.
	other := randomBytes(26, 1000)
	do := berth.DigestOf(berth.SHA256, other)
	if err := s.CreateUpload(t.Context(), "elsewhere"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "elsewhere", 0, other)
	r, rc := newCountedStoreOn(t, s)
	if _, err := r.CommitUpload(t.Context(), "elsewhere", berth.DigestOf(berth.SHA256, other[1:])); !berth.IsCode(err, berth.CodeDigestInvalid) {
		t.Fatalf("commit on the other replica under a wrong digest: %v, want digest_invalid", err)
	}
	rc.take()
	if _, err := r.CommitUpload(t.Context(), "elsewhere", do); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{"ListObjects": 1, "GetObject": 1, "CopyObject": 1, "DeleteObjects": 1}
	if got := rc.take(); !maps.Equal(got, want) {
		t.Errorf("requests of the commit on another replica: %v, want %v", got, want)
	}
}

// newCountedStoreOn returns a second store on s's bucket and prefix, another
// replica, whose requests the returned counter counts.
func newCountedStoreOn(t *testing.T, s *Store) (*Store, *requestCounter) {
	t.Helper()
	c := &requestCounter{n: map[string]int{}}
	cfg := config(t)
	cfg.Prefix = strings.TrimSuffix(s.prefix, "/")
	cfg.transport = c
	cfg.PartSize = s.partSize
	r := openStore(t, cfg)
	r.pointerMin = s.pointerMin
	c.take()
	return r, c
}

// A commit of one data object of pointerMin bytes or more copies nothing:
// the listing, the kept marker, the pointer, a look at the upload's marker,
// and one deletion of the marker and states. Its blob then reads in two GETs: the pointer's and the
// data's; a blob at its own key, in one.
func TestPointedCommitRequests(t *testing.T) {
	s, c := newCountedStore(t)
	s.pointerMin = 100_000
	data := randomBytes(24, 200_000)
	d := berth.DigestOf(berth.SHA256, data)
	if err := s.CreateUpload(t.Context(), "big"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "big", 0, data)
	c.take()
	if _, err := s.CommitUpload(t.Context(), "big", d); err != nil {
		t.Fatal(err)
	}
	// The hash state is the one the append remembered (another replica
	// would read the one it saved rather than the data); the HEAD makes
	// sure no DeleteUpload removed the marker meanwhile.
	want := map[string]int{"ListObjects": 1, "PutObject": 2, "HeadObject": 1, "DeleteObjects": 1}
	if got := c.take(); !maps.Equal(got, want) {
		t.Errorf("requests of the commit: %v, want %v", got, want)
	}
	if got := readAll(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("the pointed blob reads other bytes")
	}
	if got, want := c.take(), map[string]int{"GetObject": 2}; !maps.Equal(got, want) {
		t.Errorf("requests of reading the pointed blob: %v, want %v", got, want)
	}
	small := randomBytes(25, 1000)
	ds := berth.DigestOf(berth.SHA256, small)
	if _, err := s.Put(t.Context(), ds, int64(len(small)), bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	c.take()
	if got := readAll(t, s, ds); !bytes.Equal(got, small) {
		t.Fatal("the blob reads other bytes")
	}
	if got, want := c.take(), map[string]int{"GetObject": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of reading a blob: %v, want %v", got, want)
	}
	// http.ServeContent seeks to the end to learn the size, then back: the
	// body of the GET that opened the blob is still the one read.
	rc, _, err := s.Open(t.Context(), ds)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n, err := rc.Seek(0, io.SeekEnd); err != nil || n != int64(len(small)) {
		t.Fatalf("Seek to the end = %d, %v", n, err)
	}
	if _, err := rc.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("read after seeking to the end and back: %d bytes, %v", len(got), err)
	}
	if got, want := c.take(), map[string]int{"GetObject": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of a read after seeking to the end and back: %v, want %v", got, want)
	}
	if _, err := rc.Seek(500, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, small[500:]) {
		t.Fatalf("read from 500: %d bytes, %v", len(got), err)
	}
	if got, want := c.take(), map[string]int{"GetObject": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of a read from elsewhere: %v, want one ranged %v", got, want)
	}
}
