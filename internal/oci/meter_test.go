package oci_test

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// meter adds up what the registry reports.
type meter struct{ received, written, read atomic.Int64 }

func (m *meter) UploadBytesReceived(n int64) { m.received.Add(n) }
func (m *meter) BlobBytesWritten(n int64)    { m.written.Add(n) }
func (m *meter) BlobBytesRead(n int64)       { m.read.Add(n) }

// newMetered is a registry without a guard whose Meter is m.
func newMetered(t *testing.T, m oci.Meter) *registry {
	t.Helper()
	meta, blobs := openStores(t, t.TempDir())
	return serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.Meter = m })
}

// TestMeterCountsBytes: uploads count what arrived, commits the blob's size,
// GETs what was sent (a range only its bytes, HEAD and 416 nothing).
func TestMeterCountsBytes(t *testing.T) {
	m := &meter{}
	r := newMetered(t, m)
	whole := bytes.Repeat([]byte("monolithic "), 300) // 3300 bytes
	if resp, body := r.do("POST", "/v2/team/app/blobs/uploads/?digest="+digestOf(whole), nil, whole); resp.StatusCode != 201 {
		t.Fatalf("monolithic push: %d %s", resp.StatusCode, body)
	}
	first, last := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 500)
	resp, body := r.do("POST", "/v2/team/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("start upload: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if resp, body := r.do("PATCH", loc, http.Header{"Content-Range": {"0-999"}}, first); resp.StatusCode != 202 {
		t.Fatalf("chunk: %d %s", resp.StatusCode, body)
	}
	if resp, body := r.do("PUT", loc+"?digest="+digestOf(append(append([]byte{}, first...), last...)), nil, last); resp.StatusCode != 201 {
		t.Fatalf("last chunk: %d %s", resp.StatusCode, body)
	}
	if got := m.received.Load(); got != 3300+1500 {
		t.Errorf("upload bytes received %d, want %d", got, 3300+1500)
	}
	if got := m.written.Load(); got != 3300+1500 {
		t.Errorf("blob bytes written %d, want %d", got, 3300+1500)
	}

	blob := "/v2/team/app/blobs/" + digestOf(whole)
	if resp, _ := r.do("GET", blob, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("pull: %d", resp.StatusCode)
	}
	if resp, _ := r.do("GET", blob, http.Header{"Range": {"bytes=0-9"}}, nil); resp.StatusCode != 206 {
		t.Fatalf("range pull: %d", resp.StatusCode)
	}
	if resp, _ := r.do("HEAD", blob, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("head: %d", resp.StatusCode)
	}
	if resp, _ := r.do("GET", blob, http.Header{"Range": {"bytes=99999-"}}, nil); resp.StatusCode != 416 {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}
	if got := m.read.Load(); got != 3300+10 {
		t.Errorf("blob bytes read %d, want %d", got, 3300+10)
	}
}

func digestOf(b []byte) string { return berth.DigestOf("sha256", b).String() }
