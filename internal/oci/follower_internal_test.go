package oci

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
)

// TestSendRestOutlivesTheStreamedDeadline: a follower that fell behind the
// fetch it joined sends the rest from the store, after a wait for the fetch
// that may outlast the write deadline of its last streamed write. Each
// write of the rest gets StallTimeout of its own, so the body is whole;
// with that old deadline it was cut short (seen under the race detector:
// TestCacheClientStalls' second pull ended at 26 of 32 MiB). It covers
// sendRest through a stallWriter; that streamFollowed hands sendRest its
// stallWriter, not the bare response, is TestCacheClientStalls' to show.
func TestSendRestOutlivesTheStreamedDeadline(t *testing.T) {
	blobs, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8<<20)
	rand.Read(data)
	d := berth.DigestOf(berth.SHA256, data)
	if _, err := blobs.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Blobs: blobs, Logger: slog.New(slog.DiscardHandler)}
	f := &flight{done: make(chan struct{}), started: make(chan struct{})}
	close(f.done) // the fetch stored the blob
	const streamed = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "8388608")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(data[:streamed]); err != nil {
			t.Error(err)
			return
		}
		rc := http.NewResponseController(w)
		// The deadline the last streamed write set has passed by the time
		// the fetch is stored.
		_ = rc.SetWriteDeadline(time.Now().Add(-time.Second))
		n := int64(streamed)
		_ = h.sendRest(stallWriter{w: w, rc: rc, stall: time.Minute}, r, route{Repo: "hub/big"}, d, f, &n, func() error { return nil })
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("the follower's body: %d of %d bytes, %v", len(body), len(data), err)
	}
}
