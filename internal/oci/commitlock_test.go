package oci_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/sqlite"
)

// TestCommitsHoldDigest: with a CommitLocker, a push and a mount wait while
// garbage collection holds their digest, and only that digest.
func TestCommitsHoldDigest(t *testing.T) {
	dir := t.TempDir()
	meta, err := sqlite.Open(t.Context(), dir+"/metadata.db")
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	blobs, err := disk.New(dir + "/storage")
	if err != nil {
		t.Fatal(err)
	}
	locks := &berth.LocalCommitLocker{}
	var n atomic.Int64
	h := &oci.Handler{Meta: meta, Blobs: blobs, Uploads: blobs, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		NewID: func() string { return fmt.Sprintf("id-%d", n.Add(1)) }, Commits: locks, MaxManifestSize: 4 << 20}
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(path string) (*http.Response, error) {
		return http.Post(srv.URL+path, "application/octet-stream", bytes.NewReader(body(path)))
	}
	held := func(d berth.Digest, path string) {
		t.Helper()
		unlock, err := locks.Lock(t.Context(), d) // as GC does
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *http.Response, 1)
		go func() {
			resp, err := post(path)
			if err != nil {
				t.Error(err)
				close(done)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp
		}()
		select {
		case <-done:
			t.Fatalf("POST %s finished while GC held %s", path, d.Short())
		case <-time.After(100 * time.Millisecond):
		}
		unlock()
		if resp := <-done; resp == nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s after GC let go: %v", path, resp)
		}
	}
	a := berth.DigestOf("", []byte("layer a"))
	pushA := "/v2/team/app/blobs/uploads/?digest=" + a.String()
	held(a, pushA)
	held(a, "/v2/team/other/blobs/uploads/?mount="+a.String()+"&from=team/app")

	// Another digest held exclusively does not hold the push up.
	unlock, err := locks.Lock(t.Context(), berth.DigestOf("", []byte("unrelated")))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	b := berth.DigestOf("", []byte("layer b"))
	resp, err := post("/v2/team/app/blobs/uploads/?digest=" + b.String())
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("push of another digest: %v %v", resp, err)
	}
	resp.Body.Close()
}

// body is the blob each test path pushes: the layer its digest names.
func body(path string) []byte {
	for _, c := range []string{"layer a", "layer b"} {
		if bytes.Contains([]byte(path), []byte("digest="+berth.DigestOf("", []byte(c)).String())) {
			return []byte(c)
		}
	}
	return nil
}
