package oci_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/sqlite"
)

// statCounting counts the blob store's Stat calls: on an object store each
// is a request.
type statCounting struct {
	*disk.Store
	stats atomic.Int64
}

func (s *statCounting) Stat(ctx context.Context, d berth.Digest) (berth.BlobInfo, error) {
	s.stats.Add(1)
	return s.Store.Stat(ctx, d)
}

// TestBlobHeadAsksTheBlobStoreNothing: a HEAD is answered from the
// repository's link, which records the size, with no request to the blob
// store.
func TestBlobHeadAsksTheBlobStoreNothing(t *testing.T) {
	dir := t.TempDir()
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := disk.New(filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := &statCounting{Store: store}
	r := serveRegistry(t, meta, blobs, nil)
	d := pushBlob(t, r, "app", []byte("twelve bytes"))
	before := blobs.stats.Load()
	resp, _ := r.do("HEAD", "/v2/app/blobs/"+d.String(), nil, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 12 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if n := blobs.stats.Load() - before; n != 0 {
		t.Fatalf("a blob HEAD made %d Stat calls to the blob store, want 0", n)
	}
}
