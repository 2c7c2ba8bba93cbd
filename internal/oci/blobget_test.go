package oci_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// TestBlobGETAnswers checks a blob GET's answers, with the blob opened from
// the store and served from memory: a plain GET (sent without
// http.ServeContent) carries the same headers as one ServeContent answers,
// and a Range or a matching If-None-Match still gets 206 or 304.
func TestBlobGETAnswers(t *testing.T) {
	for _, small := range []*oci.SmallBlobs{nil, {MaxBlob: 64 << 10, MaxTotal: 1 << 20}} {
		t.Run(map[bool]string{true: "store", false: "memory"}[small == nil], func(t *testing.T) {
			meta, blobs := openStores(t, t.TempDir())
			r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.SmallBlobs = small })
			data := bytes.Repeat([]byte("0123456789"), 500)
			d := berth.DigestOf("sha256", data)
			if resp, body := r.do("POST", "/v2/app/blobs/uploads/?digest="+d.String(), nil, data); resp.StatusCode != 201 {
				t.Fatalf("push: %d %s", resp.StatusCode, body)
			}
			url := "/v2/app/blobs/" + d.String()
			for i := range 2 { // the second from memory when kept
				resp, body := r.do("GET", url, nil, nil)
				if resp.StatusCode != 200 || !bytes.Equal(body, data) {
					t.Fatalf("GET %d: %d, %d bytes", i, resp.StatusCode, len(body))
				}
				for k, want := range map[string]string{
					"Content-Length":        "5000",
					"Content-Type":          "application/octet-stream",
					"Docker-Content-Digest": d.String(),
					"Etag":                  `"` + d.String() + `"`,
					"Accept-Ranges":         "bytes",
					"Cache-Control":         "max-age=31536000",
				} {
					if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
						t.Errorf("GET %d: %s %q, want %q", i, k, got, want)
					}
				}
			}
			resp, body := r.do("GET", url, http.Header{"Range": {"bytes=10-19"}}, nil)
			if resp.StatusCode != 206 || string(body) != string(data[10:20]) || resp.Header.Get("Content-Range") != "bytes 10-19/5000" {
				t.Fatalf("range GET: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
			}
			resp, body = r.do("GET", url, http.Header{"If-None-Match": {`"` + d.String() + `"`}}, nil)
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Fatalf("GET If-None-Match its Etag: %d, %d bytes", resp.StatusCode, len(body))
			}
			resp, body = r.do("GET", url, http.Header{"If-None-Match": {`"other"`}}, nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Fatalf("GET If-None-Match another Etag: %d, %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}
