package oci_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// sessionReads counts the upload-session reads of a metadata store.
type sessionReads struct {
	berth.MetadataStore
	n atomic.Int64
}

func (s *sessionReads) FindUploadSession(ctx context.Context, id string) (berth.UploadSession, error) {
	s.n.Add(1)
	return s.MetadataStore.FindUploadSession(ctx, id)
}

// A replica reads an upload session's repository from the metadata store at
// most once: never for the sessions it started, once for a session another
// replica started. Whether the upload still exists is the upload store's
// answer, so an upload cancelled or finished through another replica is
// refused all the same, and an upload is never continued under another
// repository.
func TestUploadSessionReadOnce(t *testing.T) {
	meta, blobs := openStores(t, t.TempDir())
	reads := &sessionReads{MetadataStore: meta}
	var ids atomic.Int64
	replica := func(name string) *registry {
		return serveRegistry(t, meta, blobs, func(h *oci.Handler) {
			h.Meta = reads
			h.NewID = func() string { return fmt.Sprintf("%s-%d", name, ids.Add(1)) }
		})
	}
	a, b := replica("a"), replica("b")
	data := []byte("a chunk of a layer")
	d := berth.DigestOf(berth.SHA256, data)
	start := func(r *registry, repo string) string {
		t.Helper()
		resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}
	expect := func(r *registry, method, path string, body []byte, status int) {
		t.Helper()
		resp, got := r.do(method, path, nil, body)
		if resp.StatusCode != status {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, status)
		}
	}
	wantReads := func(step string, want int64) {
		t.Helper()
		if got := reads.n.Swap(0); got != want {
			t.Fatalf("%s: %d upload-session reads, want %d", step, got, want)
		}
	}

	loc := start(a, "app")
	expect(a, "PATCH", loc, data, http.StatusAccepted)
	expect(a, "GET", loc, nil, http.StatusNoContent)
	expect(a, "PUT", loc+"?digest="+d.String(), nil, http.StatusCreated)
	wantReads("an upload through the replica that started it", 0)

	loc = start(a, "app")
	expect(b, "PATCH", loc, data, http.StatusAccepted)
	expect(b, "PUT", loc+"?digest="+d.String(), nil, http.StatusCreated)
	wantReads("an upload continued through another replica", 1)

	// Cancelled through b, which reads the session (only the metadata
	// store knows a session that ended), while a remembers it.
	loc = start(a, "app")
	expect(a, "PATCH", loc, data, http.StatusAccepted)
	expect(b, "DELETE", loc, nil, http.StatusNoContent)
	for _, method := range []string{"PATCH", "PUT"} {
		path := loc
		if method == "PUT" {
			path += "?digest=" + d.String()
		}
		resp, body := a.do(method, path, nil, data)
		expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
	}
	resp, body := b.do("DELETE", loc, nil, nil)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)

	// Finished through b: a, which remembers it, finds it gone too.
	loc = start(a, "app")
	expect(b, "PUT", loc+"?digest="+d.String(), data, http.StatusCreated)
	resp, body = a.do("PATCH", loc, nil, data)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
	reads.n.Store(0)

	// Another repository's upload, remembered or read.
	loc = start(a, "app")
	other := strings.Replace(loc, "/v2/app/", "/v2/other/", 1)
	for _, r := range []*registry{a, b} {
		resp, body = r.do("PATCH", other, nil, data)
		expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
	}
	expect(a, "PUT", loc+"?digest="+d.String(), data, http.StatusCreated)
	wantReads("PATCHes under another repository", 1)
}
