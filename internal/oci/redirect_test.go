package oci_test

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/s3"
	"github.com/berth-dev/berth/internal/s3test"
	"github.com/berth-dev/berth/internal/sqlite"
)

// newS3Registry serves /v2/ from SQLite and a bucket of srv, whose store
// hands out presigned URLs when presign is set.
func newS3Registry(t *testing.T, srv *s3test.Server, presign bool) *registry {
	t.Helper()
	ctx := context.Background()
	meta, err := sqlite.Open(ctx, t.TempDir()+"/metadata.db")
	if err != nil {
		t.Fatal(err)
	}
	var params []string
	if presign {
		params = append(params, "presign=true")
	}
	cfg, err := s3.ParseURL(srv.URL(srv.Bucket(t), params...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = s3.CredentialsFromEnv(srv.Getenv)
	blobs, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serveRegistry(t, meta, blobs, nil)
}

// A store that offers presigned URLs gets blob GETs redirected to them, after
// the blob is found in the repository; go-containerregistry pulls through the
// redirect; HEAD still answers itself with the same headers as a store that
// does not redirect; the caller's Authorization never appears in the URL.
func TestBlobGetRedirectsToPresignedURL(t *testing.T) {
	srv := s3test.Start(t)
	redirecting, plain := newS3Registry(t, srv, true), newS3Registry(t, srv, false)
	img, err := random.Image(2048, 3, random.WithSource(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*registry{redirecting, plain} {
		if err := remote.Write(r.ref("team/app:v1"), img); err != nil {
			t.Fatal(err)
		}
	}
	got, err := remote.Image(redirecting.ref("team/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil { // reads and verifies every layer
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s, pushed %s", d, want)
	}

	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	path := "/v2/team/app/blobs/" + ld.String()
	const credential = "Bearer sekrit-token-value"
	req, _ := http.NewRequest("GET", "http://"+redirecting.host+path, nil)
	req.Header.Set("Authorization", credential)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, "http://"+srv.Endpoint+"/") {
		t.Fatalf("GET blob: %d Location %q, want 307 to the object store", resp.StatusCode, loc)
	}
	if strings.Contains(loc, "sekrit") {
		t.Fatalf("the redirect URL holds the caller's credential: %s", loc)
	}
	if resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("redirect Docker-Content-Digest %q", resp.Header.Get("Docker-Content-Digest"))
	}

	rh, _ := redirecting.do("HEAD", path, nil, nil)
	ph, _ := plain.do("HEAD", path, nil, nil)
	if rh.StatusCode != http.StatusOK || ph.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d and %d, want 200", rh.StatusCode, ph.StatusCode)
	}
	size, _ := layers[0].Size()
	for _, k := range []string{"Docker-Content-Digest", "Content-Length", "Content-Type", "Etag"} {
		if rh.Header.Get(k) != ph.Header.Get(k) {
			t.Errorf("HEAD %s: %q redirecting, %q not", k, rh.Header.Get(k), ph.Header.Get(k))
		}
	}
	if rh.Header.Get("Docker-Content-Digest") != ld.String() || rh.Header.Get("Content-Length") != fmt.Sprint(size) || rh.Header.Get("Location") != "" {
		t.Errorf("HEAD headers %v, want digest %s and length %d", rh.Header, ld, size)
	}

	// A blob the repository does not hold is unknown, not redirected.
	resp, body := redirecting.do("GET", "/v2/team/none/blobs/"+ld.String(), nil, nil)
	expectError(t, resp, body, http.StatusNotFound, berth.CodeBlobUnknown)
	// Without presign the registry sends the bytes itself.
	resp, err = noFollow.Get("http://" + plain.host + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET without presign: %d, want 200", resp.StatusCode)
	}
}
