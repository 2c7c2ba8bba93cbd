package oci_test

import (
	"net/http"
	"testing"
)

// TestBlobHeadAsksTheBlobStoreNothing: a HEAD is answered from the
// repository's link, which records the size, with no request to the blob
// store.
func TestBlobHeadAsksTheBlobStoreNothing(t *testing.T) {
	r, blobs := countingRegistry(t, nil)
	d := pushBlob(t, r, "app", []byte("twelve bytes"))
	stats, opens := blobs.stats.Load(), blobs.opens.Load()
	resp, _ := r.do("HEAD", "/v2/app/blobs/"+d.String(), nil, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 12 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if n := blobs.stats.Load() - stats + blobs.opens.Load() - opens; n != 0 {
		t.Fatalf("a blob HEAD made %d calls to the blob store, want 0", n)
	}
}
