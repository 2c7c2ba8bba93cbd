package oci_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/sqlite"
)

// registry is a real berth registry on a random loopback port.
type registry struct {
	t    testing.TB
	host string // 127.0.0.1:PORT
	meta *sqlite.DB
	blob *disk.Store
}

func newRegistry(t *testing.T) *registry {
	t.Helper()
	meta, blobs := openStores(t, t.TempDir())
	r := serveRegistry(t, meta, blobs, nil)
	r.blob = blobs
	return r
}

// openStores opens the embedded stores in dir, as berth serve lays them
// out: metadata.db and storage/.
func openStores(t testing.TB, dir string) (*sqlite.DB, *disk.Store) {
	t.Helper()
	meta, err := sqlite.Open(context.Background(), dir+"/metadata.db")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(dir + "/storage")
	if err != nil {
		t.Fatal(err)
	}
	return meta, blobs
}

// blobUploadStore is what a registry keeps its bytes in: disk or s3.
type blobUploadStore interface {
	berth.BlobStore
	berth.UploadStore
}

// serveRegistry serves /v2/ without a guard from meta and blobs on a random
// loopback port until the test ends, then closes meta. edit, when set, adds
// to the handler (a Meter, say) before it serves.
func serveRegistry(t testing.TB, meta *sqlite.DB, blobs blobUploadStore, edit func(*oci.Handler)) *registry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(server.LogHandler(slog.NewTextHandler(io.Discard, nil)))
	var n int
	var mu sync.Mutex
	newID := func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("id-%d", n)
	}
	h := &oci.Handler{Meta: meta, Blobs: blobs, Uploads: blobs, Logger: logger, Now: time.Now, NewID: newID,
		CommitLock: &sync.RWMutex{}, MaxManifestSize: 4 << 20}
	if edit != nil {
		edit(h)
	}
	srv := server.New(server.Config{Addr: "127.0.0.1:0", Handlers: map[string]http.Handler{"/v2/": h}, Logger: logger, NewID: newID})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		st := time.Now()
		cancel()
		defer func() { t.Logf("shutdown took %s", time.Since(st)) }()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		meta.Close()
	})
	return &registry{t: t, host: srv.Addr(), meta: meta}
}

func (r *registry) ref(s string) name.Reference {
	ref, err := name.ParseReference(r.host+"/"+s, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

// do sends a raw request and returns the response with its body read.
func (r *registry) do(method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	r.t.Helper()
	req, err := http.NewRequest(method, "http://"+r.host+path, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h // a Host header is the request's Host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// reason returns the berth reason code and OCI code of an error body.
func reason(t *testing.T, body []byte) (berth.Code, string) {
	t.Helper()
	var env struct {
		Errors []struct {
			Code   string         `json:"code"`
			Detail map[string]any `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) != 1 {
		t.Fatalf("not an OCI error body: %s", body)
	}
	if env.Errors[0].Detail["request_id"] == "" {
		t.Errorf("error without request id: %s", body)
	}
	r, _ := env.Errors[0].Detail["reason"].(string)
	return berth.Code(r), env.Errors[0].Code
}

func expectError(t *testing.T, resp *http.Response, body []byte, status int, code berth.Code) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if got, _ := reason(t, body); got != code {
		t.Fatalf("reason %s, want %s: %s", got, code, body)
	}
}

func TestPushPullImage(t *testing.T) {
	r := newRegistry(t)
	img, err := random.Image(1024, 5, random.WithSource(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.ref("team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r.ref("team/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s, pushed %s", d, want)
	}
	// A second repository gets its layers by mount, then pulls the same image.
	if err := remote.Write(r.ref("team/other:v1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(r.ref("team/other@" + want.String())); err != nil {
		t.Fatal(err)
	}
}

func TestPushPullIndexAndReferrers(t *testing.T) {
	r := newRegistry(t)
	idx, err := random.Index(512, 2, 3, random.WithSource(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r.ref("multi:latest"), idx); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(r.ref("multi:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatal(err)
	}

	// Two artifacts refer to the index; one is filtered out by artifactType.
	idxDigest, _ := idx.Digest()
	idxMF, _ := idx.MediaType()
	idxSize, _ := idx.Size()
	subject := v1.Descriptor{MediaType: idxMF, Digest: idxDigest, Size: idxSize}
	for i, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		base = mutate.Annotations(mutate.ConfigMediaType(base, types.MediaType(at)), map[string]string{"n": fmt.Sprint(i)}).(v1.Image)
		art := mutate.Subject(base, subject).(v1.Image)
		if err := remote.Write(r.ref(fmt.Sprintf("multi:art%d", i)), art); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := name.NewDigest(r.host+"/multi@"+idxDigest.String(), name.Insecure)
	refs, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := refs.IndexManifest()
	if len(m.Manifests) != 2 {
		t.Fatalf("got %d referrers, want 2", len(m.Manifests))
	}
	resp, body := r.do("GET", "/v2/multi/referrers/"+idxDigest.String()+"?artifactType=application/vnd.example.sig", nil, nil)
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("OCI-Filters-Applied = %q", resp.Header.Get("OCI-Filters-Applied"))
	}
	var filtered v1.IndexManifest
	if err := json.Unmarshal(body, &filtered); err != nil {
		t.Fatal(err)
	}
	if len(filtered.Manifests) != 1 || filtered.Manifests[0].ArtifactType != "application/vnd.example.sig" || filtered.Manifests[0].Annotations["n"] != "1" {
		t.Fatalf("filtered referrers: %s", body)
	}
}

func TestSubjectPushedBeforeItExists(t *testing.T) {
	r := newRegistry(t)
	missing := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, Size: 10}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art := mutate.Subject(mutate.ConfigMediaType(base, "application/vnd.example.sig"), missing).(v1.Image)
	raw, _ := art.RawManifest()
	cfg, _ := art.RawConfigFile()
	cfgDigest, _ := art.ConfigName()
	pushBlob(t, r, "sig", cfg)
	_ = cfgDigest
	resp, body := r.do("PUT", "/v2/sig/manifests/v1", http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, raw)
	if resp.StatusCode != 201 {
		t.Fatalf("push with absent subject: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("OCI-Subject") != missing.Digest.String() {
		t.Errorf("OCI-Subject = %q", resp.Header.Get("OCI-Subject"))
	}
}

// pushBlob uploads b monolithically and returns its digest.
func pushBlob(t *testing.T, r *registry, repo string, b []byte) berth.Digest {
	t.Helper()
	d := berth.DigestOf("sha256", b)
	resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), http.Header{"Content-Type": {"application/octet-stream"}}, b)
	if resp.StatusCode != 201 {
		t.Fatalf("push blob: %d %s", resp.StatusCode, body)
	}
	return d
}

func TestChunkedUpload(t *testing.T) {
	r := newRegistry(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	d := berth.DigestOf("sha256", data)
	resp, _ := r.do("POST", "/v2/chunks/blobs/uploads/", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	patch := func(start, end int) (*http.Response, []byte) {
		return r.do("PATCH", loc, http.Header{"Content-Range": {fmt.Sprintf("%d-%d", start, end-1)}, "Content-Type": {"application/octet-stream"}}, data[start:end])
	}
	resp, body := patch(0, 4000)
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("first chunk: %d %q %s", resp.StatusCode, resp.Header.Get("Range"), body)
	}
	resp, body = patch(5000, 6000)
	expectError(t, resp, body, http.StatusRequestedRangeNotSatisfiable, berth.CodeRangeInvalid)
	resp, _ = r.do("GET", loc, nil, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("status: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	if resp, body = patch(4000, 9000); resp.StatusCode != 202 {
		t.Fatalf("second chunk: %d %s", resp.StatusCode, body)
	}
	// The last chunk comes with the closing PUT; a wrong digest is refused first.
	wrong := berth.DigestOf("sha256", []byte("other"))
	resp, body = r.do("PUT", loc+"?digest="+wrong.String(), nil, nil)
	expectError(t, resp, body, http.StatusBadRequest, berth.CodeDigestInvalid)
	resp, body = r.do("PUT", loc+"?digest="+d.String(), http.Header{"Content-Range": {"9000-9999"}}, data[9000:])
	if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("close: %d %s", resp.StatusCode, body)
	}
	resp, body = r.do("GET", "/v2/chunks/blobs/"+d.String(), http.Header{"Range": {"bytes=10-19"}}, nil)
	if resp.StatusCode != 206 || string(body) != string(data[10:20]) {
		t.Fatalf("range get: %d %q", resp.StatusCode, body)
	}
	resp, body = r.do("GET", loc, nil, nil)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
}

func TestStreamedUploadAndCancel(t *testing.T) {
	r := newRegistry(t)
	data := []byte("streamed without content-range")
	resp, _ := r.do("POST", "/v2/s/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	if resp, body := r.do("PATCH", loc, nil, data); resp.StatusCode != 202 {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	d := berth.DigestOf("sha256", data)
	if resp, body := r.do("PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != 201 {
		t.Fatalf("put: %d %s", resp.StatusCode, body)
	}

	resp, _ = r.do("POST", "/v2/s/blobs/uploads/", nil, nil)
	loc = resp.Header.Get("Location")
	if resp, _ := r.do("DELETE", loc, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	resp, body := r.do("PATCH", loc, nil, data)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
	// An upload cannot be continued through another repository.
	resp, _ = r.do("POST", "/v2/s/blobs/uploads/", nil, nil)
	other := strings.Replace(resp.Header.Get("Location"), "/v2/s/", "/v2/t/", 1)
	resp, body = r.do("PATCH", other, nil, data)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUploadUnknown)
}

func TestSHA512(t *testing.T) {
	r := newRegistry(t)
	data := []byte("sha512 content")
	sum := sha512.Sum512(data)
	d := "sha512:" + hex.EncodeToString(sum[:])
	resp, body := r.do("POST", "/v2/big/blobs/uploads/?digest="+d, nil, data)
	if resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	resp, body = r.do("GET", "/v2/big/blobs/"+d, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("get: %d %s", resp.StatusCode, body)
	}
	cfg := pushBlob(t, r, "big", []byte("{}"))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`, cfg, d, len(data))
	ms := sha512.Sum512([]byte(manifest))
	md := "sha512:" + hex.EncodeToString(ms[:])
	resp, body = r.do("PUT", "/v2/big/manifests/"+md, http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, []byte(manifest))
	if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != md {
		t.Fatalf("manifest: %d %s %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), body)
	}
	resp, body = r.do("GET", "/v2/big/manifests/"+md, nil, nil)
	if resp.StatusCode != 200 || string(body) != manifest {
		t.Fatalf("get manifest: %d", resp.StatusCode)
	}
}

func TestRefusals(t *testing.T) {
	r := newRegistry(t)
	cfg := pushBlob(t, r, "app", []byte("{}"))
	absent := berth.DigestOf("sha256", []byte("absent"))
	manifest := func(layer berth.Digest, size int) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`, cfg, layer, size))
	}
	ct := http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}
	cases := []struct {
		name, method, path string
		header             http.Header
		body               []byte
		status             int
		code               berth.Code
	}{
		{"bad name", "GET", "/v2/Upper/tags/list", nil, nil, 400, berth.CodeNameInvalid},
		{"bad digest", "GET", "/v2/app/blobs/sha256:xyz", nil, nil, 400, berth.CodeDigestInvalid},
		{"unsupported algorithm", "GET", "/v2/app/blobs/md5:" + strings.Repeat("a", 32), nil, nil, 400, berth.CodeDigestInvalid},
		{"blob unknown", "GET", "/v2/app/blobs/" + absent.String(), nil, nil, 404, berth.CodeBlobUnknown},
		{"blob in another repo", "HEAD", "/v2/other/blobs/" + cfg.String(), nil, nil, 404, berth.CodeBlobUnknown},
		{"manifest unknown", "GET", "/v2/app/manifests/nope", nil, nil, 404, berth.CodeManifestUnknown},
		{"bad tag", "PUT", "/v2/app/manifests/-bad", ct, manifest(cfg, 2), 400, berth.CodeTagInvalid},
		{"not json", "PUT", "/v2/app/manifests/v1", ct, []byte("{"), 400, berth.CodeManifestInvalid},
		{"schema 1", "PUT", "/v2/app/manifests/v1", ct, []byte(`{"schemaVersion":1}`), 400, berth.CodeManifestInvalid},
		{"layer missing", "PUT", "/v2/app/manifests/v1", ct, manifest(absent, 6), 400, berth.CodeManifestBlobUnknown},
		{"size lies", "PUT", "/v2/app/manifests/v1", ct, manifest(cfg, 3), 400, berth.CodeManifestInvalid},
		{"digest mismatch", "PUT", "/v2/app/manifests/" + absent.String(), ct, manifest(cfg, 2), 400, berth.CodeDigestInvalid},
		{"media type mismatch", "PUT", "/v2/app/manifests/v1", http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}, manifest(cfg, 2), 400, berth.CodeManifestInvalid},
		{"blob digest mismatch", "POST", "/v2/app/blobs/uploads/?digest=" + absent.String(), nil, []byte("present"), 400, berth.CodeDigestInvalid},
		{"tags of unknown repo", "GET", "/v2/nothing/tags/list", nil, nil, 404, berth.CodeNameUnknown},
		{"bad n", "GET", "/v2/app/tags/list?n=-1", nil, nil, 400, berth.CodeInvalid},
		{"no endpoint", "GET", "/v2/app/whatever", nil, nil, 404, berth.CodeNotFound},
		{"method", "POST", "/v2/app/manifests/v1", nil, nil, 405, berth.CodeUnsupported},
		{"close without digest", "PUT", "/v2/app/blobs/uploads/id-1", nil, nil, 400, berth.CodeDigestInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := r.do(c.method, c.path, c.header, c.body)
			if c.method == "HEAD" {
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
				}
				return
			}
			expectError(t, resp, body, c.status, c.code)
		})
	}
	// Nothing refused changed anything: the repository still has no tags.
	resp, body := r.do("GET", "/v2/app/tags/list", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"tags":[]`) {
		t.Fatalf("tags after refusals: %d %s", resp.StatusCode, body)
	}
}

func TestTagsCatalogPaginationAndDeletion(t *testing.T) {
	r := newRegistry(t)
	img, _ := random.Image(100, 1, random.WithSource(rand.NewSource(3)))
	for _, tag := range []string{"c", "a", "b", "d"} {
		if err := remote.Write(r.ref("pages:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	for _, repo := range []string{"z/one", "a/two"} {
		if err := remote.Write(r.ref(repo+":x"), img); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := r.do("GET", "/v2/pages/tags/list?n=2", nil, nil)
	if string(body) != `{"name":"pages","tags":["a","b"]}` {
		t.Fatalf("page 1: %s", body)
	}
	link := resp.Header.Get("Link")
	if link != `</v2/pages/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("Link = %q", link)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	resp, body = r.do("GET", next, nil, nil)
	if string(body) != `{"name":"pages","tags":["c","d"]}` || resp.Header.Get("Link") != "" {
		t.Fatalf("page 2: %s link %q", body, resp.Header.Get("Link"))
	}
	_, body = r.do("GET", "/v2/_catalog?n=2", nil, nil)
	if string(body) != `{"repositories":["a/two","pages"]}` {
		t.Fatalf("catalog: %s", body)
	}
	_, body = r.do("GET", "/v2/_catalog?last="+url.QueryEscape("pages"), nil, nil)
	if string(body) != `{"repositories":["z/one"]}` {
		t.Fatalf("catalog after pages: %s", body)
	}

	// Deleting a tag keeps the manifest; deleting the manifest removes its tags.
	if resp, _ := r.do("DELETE", "/v2/pages/manifests/a", nil, nil); resp.StatusCode != 202 {
		t.Fatalf("delete tag: %d", resp.StatusCode)
	}
	d, _ := img.Digest()
	if resp, _ := r.do("HEAD", "/v2/pages/manifests/"+d.String(), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("manifest gone with its tag: %d", resp.StatusCode)
	}
	if resp, _ := r.do("DELETE", "/v2/pages/manifests/"+d.String(), nil, nil); resp.StatusCode != 202 {
		t.Fatalf("delete manifest: %d", resp.StatusCode)
	}
	_, body = r.do("GET", "/v2/pages/tags/list", nil, nil)
	if string(body) != `{"name":"pages","tags":[]}` {
		t.Fatalf("tags after delete: %s", body)
	}
	resp, body = r.do("GET", "/v2/pages/manifests/b", nil, nil)
	expectError(t, resp, body, 404, berth.CodeManifestUnknown)
	// The other repositories keep the same digest.
	if _, err := remote.Image(r.ref("z/one:x")); err != nil {
		t.Fatal(err)
	}
}

func TestMount(t *testing.T) {
	r := newRegistry(t)
	d := pushBlob(t, r, "src", []byte("layer"))
	resp, _ := r.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil, nil)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/v2/dst/blobs/"+d.String() {
		t.Fatalf("mount with from: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = r.do("POST", "/v2/auto/blobs/uploads/?mount="+d.String(), nil, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("mount without from: %d", resp.StatusCode)
	}
	absent := berth.DigestOf("sha256", []byte("absent"))
	resp, _ = r.do("POST", "/v2/dst/blobs/uploads/?mount="+absent.String()+"&from=src", nil, nil)
	if resp.StatusCode != 202 || resp.Header.Get("Location") == "" {
		t.Fatalf("unmountable blob must open an upload: %d", resp.StatusCode)
	}
	// Deleting a blob from one repository leaves it in the others.
	if resp, _ := r.do("DELETE", "/v2/dst/blobs/"+d.String(), nil, nil); resp.StatusCode != 202 {
		t.Fatalf("delete blob: %d", resp.StatusCode)
	}
	if resp, _ := r.do("HEAD", "/v2/dst/blobs/"+d.String(), nil, nil); resp.StatusCode != 404 {
		t.Fatalf("deleted blob still in dst: %d", resp.StatusCode)
	}
	if resp, _ := r.do("HEAD", "/v2/src/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("blob gone from src: %d", resp.StatusCode)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	r := newRegistry(t)
	resp, body := r.do("GET", "/v2/app/manifests/none", http.Header{"X-Request-Id": {"ci-job-42"}}, nil)
	if resp.Header.Get("X-Request-Id") != "ci-job-42" || !strings.Contains(string(body), `"request_id":"ci-job-42"`) {
		t.Fatalf("request id not carried: %q %s", resp.Header.Get("X-Request-Id"), body)
	}
}
