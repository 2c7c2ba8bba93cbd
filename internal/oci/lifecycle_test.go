package oci_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/oci"
)

// newRuledRegistry is newRegistry with the lifecycle rules enforced; call
// the Enforcer's Invalidate after changing rules in the store.
func newRuledRegistry(t *testing.T) (*registry, *lifecycle.Enforcer) {
	t.Helper()
	meta, blobs := openStores(t, t.TempDir())
	rules := &lifecycle.Enforcer{Store: meta, Meta: meta, Now: time.Now}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.Lifecycle = rules })
	r.blob = blobs
	return r, rules
}

// imageManifest returns an image manifest of layer (5 bytes) and a config
// made from salt, pushing the config to repo.
func imageManifest(t *testing.T, r *registry, repo string, layer berth.Digest, salt string) ([]byte, berth.Digest) {
	t.Helper()
	cfg := []byte(`{"salt":"` + salt + `"}`)
	config := pushBlob(t, r, repo, cfg)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":5}]}`, config, len(cfg), layer))
	return m, berth.DigestOf("sha256", m)
}

var manifestType = http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}

// TestTagQueryParameters: a push by digest with ?tag= points each tag at the
// manifest and answers one OCI-Tag header per tag; an immutable tag among
// them refuses the whole push.
func TestTagQueryParameters(t *testing.T) {
	r, rules := newRuledRegistry(t)
	layer := pushBlob(t, r, "app", []byte("layer"))
	m, d := imageManifest(t, r, "app", layer, "first")
	resp, body := r.do("PUT", "/v2/app/manifests/"+d.String()+"?tag=v1&tag=latest", manifestType, m)
	if resp.StatusCode != http.StatusCreated || !slices.Equal(resp.Header.Values("OCI-Tag"), []string{"v1", "latest"}) {
		t.Fatalf("push with ?tag=: %d, OCI-Tag %q: %s", resp.StatusCode, resp.Header.Values("OCI-Tag"), body)
	}
	for _, tag := range []string{"v1", "latest"} {
		got, err := r.meta.FindManifest(t.Context(), "app", tag)
		if err != nil || got.Digest != d {
			t.Fatalf("tag %s: %v %v", tag, got, err)
		}
	}
	resp, body = r.do("PUT", "/v2/app/manifests/"+d.String()+"?tag=-bad", manifestType, m)
	expectError(t, resp, body, http.StatusBadRequest, berth.CodeTagInvalid)

	must(t, r.meta.PutImmutableRule(t.Context(), berth.ImmutableRule{Scope: berth.RegistryScope, Tags: "v*", Created: time.Now()}))
	rules.Invalidate()
	other, od := imageManifest(t, r, "app", layer, "other")
	resp, body = r.do("PUT", "/v2/app/manifests/"+od.String()+"?tag=latest&tag=v1", manifestType, other)
	expectError(t, resp, body, http.StatusConflict, berth.CodeTagImmutable)
	if got, _ := r.meta.FindManifest(t.Context(), "app", "latest"); got.Digest != d {
		t.Fatal("a refused push moved another of its tags")
	}
	resp, body = r.do("PUT", "/v2/app/manifests/v1", manifestType, other)
	expectError(t, resp, body, http.StatusConflict, berth.CodeTagImmutable)
	resp, body = r.do("DELETE", "/v2/app/manifests/v1", nil, nil)
	expectError(t, resp, body, http.StatusConflict, berth.CodeTagImmutable)
	resp, body = r.do("DELETE", "/v2/app/manifests/"+d.String(), nil, nil)
	expectError(t, resp, body, http.StatusConflict, berth.CodeTagImmutable)
}

// TestQuotaRefusedBeforeTheBytes: a monolithic push whose Content-Length is
// beyond the quota is refused with quota_exceeded and nothing is stored; one
// that fills the quota exactly is accepted.
func TestQuotaRefusedBeforeTheBytes(t *testing.T) {
	r, rules := newRuledRegistry(t)
	pushBlob(t, r, "team/app", []byte("0123456789"))
	must(t, r.meta.PutQuota(t.Context(), berth.Quota{Scope: berth.RegistryScope, MaxSize: 15, Updated: time.Now()}))
	rules.Invalidate()
	big := []byte("this body is longer than the five bytes left")
	resp, body := r.do("POST", "/v2/team/app/blobs/uploads/?digest="+berth.DigestOf("sha256", big).String(), http.Header{"Content-Type": {"application/octet-stream"}}, big)
	expectError(t, resp, body, http.StatusForbidden, berth.CodeQuotaExceeded)
	if _, err := r.blob.Stat(t.Context(), berth.DigestOf("sha256", big)); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("the refused blob was stored: %v", err)
	}
	pushBlob(t, r, "team/app", []byte("12345")) // exactly the five bytes left
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// statCounter counts the upload store's StatUpload calls.
type statCounter struct {
	berth.UploadStore
	n atomic.Int32
}

func (s *statCounter) StatUpload(ctx context.Context, id string) (berth.UploadInfo, error) {
	s.n.Add(1)
	return s.UploadStore.StatUpload(ctx, id)
}

// TestQuotaRefusedAtCommit: an upload streamed without a length is checked
// against the quota when a PUT without bytes closes it, before the commit
// (the upload stays, as it was); a PUT that closes an upload no quota covers
// does not ask the upload store what it holds (a request to a remote store).
func TestQuotaRefusedAtCommit(t *testing.T) {
	meta, blobs := openStores(t, t.TempDir())
	rules := &lifecycle.Enforcer{Store: meta, Meta: meta, Now: time.Now}
	uploads := &statCounter{UploadStore: blobs}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.Lifecycle, h.Uploads = rules, uploads })
	pushBlob(t, r, "team/app", []byte("0123456789"))
	team, err := berth.ParseScope("team/*")
	must(t, err)
	must(t, meta.PutQuota(t.Context(), berth.Quota{Scope: team, MaxSize: 15, Updated: time.Now()}))
	rules.Invalidate()

	stream := func(repo string, b []byte) (berth.Digest, string) {
		t.Helper()
		resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start: %d %s", resp.StatusCode, body)
		}
		loc := resp.Header.Get("Location")
		req, _ := http.NewRequest("PATCH", "http://"+r.host+loc, io.MultiReader(bytes.NewReader(b))) // no length
		req.Header.Set("Content-Type", "application/octet-stream")
		presp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		presp.Body.Close()
		if presp.StatusCode != http.StatusAccepted {
			t.Fatalf("streamed chunk: %d", presp.StatusCode)
		}
		return berth.DigestOf("sha256", b), loc
	}
	big := []byte("this body is longer than the five bytes left")
	d, loc := stream("team/app", big)
	resp, body := r.do("PUT", loc+"?digest="+d.String(), nil, nil)
	expectError(t, resp, body, http.StatusForbidden, berth.CodeQuotaExceeded)
	if resp, _ := r.do("HEAD", "/v2/team/app/blobs/"+d.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the refused blob is in the repository: HEAD %d", resp.StatusCode)
	}
	if resp, body := r.do("GET", loc, nil, nil); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != fmt.Sprintf("0-%d", len(big)-1) {
		t.Errorf("the refused upload is gone: %d %q %s", resp.StatusCode, resp.Header.Get("Range"), body)
	}
	small := []byte("12345") // exactly the five bytes left
	d, loc = stream("team/app", small)
	if resp, body := r.do("PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("commit within the quota: %d %s", resp.StatusCode, body)
	}

	d, loc = stream("other/app", big) // no quota covers other/
	before := uploads.n.Load()
	if resp, body := r.do("PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("commit where no quota applies: %d %s", resp.StatusCode, body)
	}
	if n := uploads.n.Load() - before; n != 0 {
		t.Errorf("the PUT without bytes asked the upload store what it holds %d times", n)
	}
}

// TestChunkWithoutRangeAsksNoSize: a PATCH without Content-Range goes at the
// upload's end without the handler asking the upload store its size first
// (a request to a remote store), twice in a row; where a quota covers the
// repository, a chunk of announced length is still counted against it
// before its bytes are accepted.
func TestChunkWithoutRangeAsksNoSize(t *testing.T) {
	meta, blobs := openStores(t, t.TempDir())
	rules := &lifecycle.Enforcer{Store: meta, Meta: meta, Now: time.Now}
	uploads := &statCounter{UploadStore: blobs}
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.Lifecycle, h.Uploads = rules, uploads })
	team, err := berth.ParseScope("team/*")
	must(t, err)
	must(t, meta.PutQuota(t.Context(), berth.Quota{Scope: team, MaxSize: 15, Updated: time.Now()}))
	rules.Invalidate()

	patch := func(loc string, b []byte) (*http.Response, []byte) {
		t.Helper()
		return r.do("PATCH", loc, http.Header{"Content-Type": {"application/octet-stream"}}, b)
	}
	start := func(repo string) string {
		t.Helper()
		resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}

	loc := start("other/app")
	before := uploads.n.Load()
	first, second := []byte("the first chunk, "), []byte("and the second")
	held := 0
	for i, chunk := range [][]byte{first, second} {
		resp, body := patch(loc, chunk)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("chunk %d: %d %s", i+1, resp.StatusCode, body)
		}
		held += len(chunk)
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", held-1); got != want {
			t.Errorf("chunk %d: Range %q, want %q", i+1, got, want)
		}
		loc = resp.Header.Get("Location")
	}
	if n := uploads.n.Load() - before; n != 0 {
		t.Errorf("two PATCHes without Content-Range asked the upload store its size %d times", n)
	}
	whole := append(append([]byte(nil), first...), second...)
	if resp, body := r.do("PUT", loc+"?digest="+berth.DigestOf("sha256", whole).String(), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("commit of both chunks: %d %s", resp.StatusCode, body)
	}

	// Ten bytes fit the quota of 15; ten more do not, counting the ten the
	// upload holds.
	loc = start("team/app")
	resp, body := patch(loc, []byte("ten bytes!"))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a chunk within the quota: %d %s", resp.StatusCode, body)
	}
	before = uploads.n.Load()
	resp, body = patch(resp.Header.Get("Location"), []byte("ten more!!"))
	expectError(t, resp, body, http.StatusForbidden, berth.CodeQuotaExceeded)
	if uploads.n.Load() == before {
		t.Error("a chunk under a quota was not counted against what the upload holds")
	}
}
