package oci_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// A chunk sent without Content-Length must hold exactly the bytes its
// Content-Range spans: 0-1 with 50 bytes was taken as 0-49. The refused
// chunk leaves nothing behind.
func TestChunkMustMatchItsContentRange(t *testing.T) {
	r := newRegistry(t)
	resp, _ := r.do("POST", "/v2/strict/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	patch := func(contentRange string, body []byte) (*http.Response, []byte) {
		req, err := http.NewRequest("PATCH", "http://"+r.host+loc, io.MultiReader(bytes.NewReader(body))) // no length: chunked
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Range", contentRange)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, tc := range []struct {
		contentRange string
		size         int
	}{{"0-1", 50}, {"0-49", 10}} {
		resp, body := patch(tc.contentRange, bytes.Repeat([]byte("x"), tc.size))
		if got, _ := reason(t, body); got != berth.CodeSizeInvalid {
			t.Errorf("Content-Range %s with %d bytes: %d %s, want size_invalid", tc.contentRange, tc.size, resp.StatusCode, body)
		}
		if resp, _ := r.do("GET", loc, nil, nil); resp.Header.Get("Range") != "0-0" {
			t.Errorf("after the refused chunk the upload holds %s", resp.Header.Get("Range"))
		}
	}
	if resp, body := patch("0-49", bytes.Repeat([]byte("x"), 50)); resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-49" {
		t.Fatalf("an exact chunk: %d %s", resp.StatusCode, body)
	}
}

// A manifest is one JSON document: trailing bytes are refused, white space
// is not.
func TestManifestWithTrailingBytes(t *testing.T) {
	r := newRegistry(t)
	const doc = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	hdr := http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}
	for _, tail := range []string{"garbage", "{}", `{"schemaVersion":2}`, "\x00"} {
		resp, body := r.do("PUT", "/v2/strict/manifests/tail", hdr, []byte(doc+tail))
		expectError(t, resp, body, http.StatusBadRequest, berth.CodeManifestInvalid)
	}
	if resp, body := r.do("PUT", "/v2/strict/manifests/ws", hdr, []byte(doc+" \n")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("trailing white space: %d %s", resp.StatusCode, body)
	}
	if _, body := r.do("GET", "/v2/strict/manifests/tail", nil, nil); !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("a refused manifest was stored: %s", body)
	}
}
