package upstream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/upstream"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// pushRandom puts a random image at repo:tag of up and returns its manifest digest.
func pushRandom(t *testing.T, up *upstreamtest.Registry, repo, tag string) (berth.Digest, *remote.Descriptor) {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(up.PushHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	return berth.Digest(desc.Digest.String()), desc
}

func newUpstream(t *testing.T, url, user, pass string) berth.Upstream {
	t.Helper()
	req := berth.NewUpstreamRequest{Name: "up", URL: url, Namespace: "up", Username: user, Password: berth.UpstreamPasswordOf(pass)}
	u, err := berth.NewUpstream(req, now)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestClientTokenAuth(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.New(t, "bot", "right")
	d, desc := pushRandom(t, up, "library/alpine", "3.20")
	c := upstream.New(nil, clock)
	u := newUpstream(t, up.URL, "bot", "right")

	m, err := c.GetManifest(ctx, u, "library/alpine", "3.20")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != d || string(m.Content) != string(desc.Manifest) || m.MediaType == "" {
		t.Errorf("manifest = %s %s, want %s", m.Digest, m.MediaType, d)
	}
	h, err := c.HeadManifest(ctx, u, "library/alpine", "3.20")
	if err != nil || h.Digest != d {
		t.Fatalf("HEAD = %+v, %v", h, err)
	}
	img, _ := desc.Image()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	body, size, err := c.GetBlob(ctx, u, "library/alpine", berth.Digest(ld.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if int64(len(b)) != size || berth.DigestOf("", b) != berth.Digest(ld.String()) {
		t.Errorf("blob: %d bytes of %d, digest %s", len(b), size, berth.DigestOf("", b))
	}
	if n := up.TokenGets.Load(); n != 1 {
		t.Errorf("%d token requests for one scope, want 1 (tokens are reused)", n)
	}
	if err := c.Verify(ctx, u, ""); err != nil {
		t.Errorf("Verify = %v", err)
	}

	// A missing tag and blob are the registry's own codes, naming the upstream.
	_, err = c.GetManifest(ctx, u, "library/alpine", "nope")
	if !berth.IsCode(err, berth.CodeManifestUnknown) || !strings.Contains(err.Error(), "of upstream up (") {
		t.Errorf("missing tag: %v", err)
	}
	_, _, err = c.GetBlob(ctx, u, "library/alpine", berth.DigestOf("", []byte("none")))
	if !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Errorf("missing blob: %v", err)
	}
}

func TestClientRefusals(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.New(t, "bot", "right")
	pushRandom(t, up, "library/alpine", "3.20")
	c := upstream.New(nil, clock)

	wrong := newUpstream(t, up.URL, "bot", "wrong")
	_, err := c.GetManifest(ctx, wrong, "library/alpine", "3.20")
	e := berth.AsError(err)
	// It names the upstream and passes on what the upstream said; never the
	// password.
	if e == nil || e.Code != berth.CodeUpstreamAuthFailed || e.Detail["upstream"] != "up" ||
		!strings.Contains(e.Message, "incorrect username or password") || strings.Contains(e.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}
	if err := c.Verify(ctx, wrong, ""); !berth.IsCode(err, berth.CodeUpstreamAuthFailed) {
		t.Errorf("Verify with a wrong password = %v", err)
	}
	anon := newUpstream(t, up.URL, "", "")
	if _, err := c.GetManifest(ctx, anon, "library/alpine", "3.20"); !berth.IsCode(err, berth.CodeUpstreamAuthFailed) {
		t.Errorf("anonymous on an upstream that needs a login: %v", err)
	}

	right := newUpstream(t, up.URL, "bot", "right")
	up.RateLimit("120")
	_, err = c.GetManifest(ctx, right, "library/alpine", "3.20")
	e = berth.AsError(err)
	if e == nil || e.Code != berth.CodeUpstreamRateLimited || e.Detail["retry_after"] != 120 {
		t.Errorf("rate limited: %#v", err)
	}
	up.RateLimit("")

	up.Stop()
	_, err = c.GetManifest(ctx, right, "library/alpine", "3.20")
	if e := berth.AsError(err); e == nil || e.Code != berth.CodeUpstreamUnreachable || e.Detail["upstream"] != "up" {
		t.Errorf("stopped: %v", err)
	}
}

// TestClientBasicAuth reads an upstream that asks for Basic credentials.
func TestClientBasicAuth(t *testing.T) {
	ctx := context.Background()
	srv := newBasicServer(t, "bot", "right")
	c := upstream.New(nil, clock)
	if err := c.Verify(ctx, newUpstream(t, srv, "bot", "right"), ""); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := c.Verify(ctx, newUpstream(t, srv, "bot", "wrong"), ""); !berth.IsCode(err, berth.CodeUpstreamAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
	if err := c.Verify(ctx, newUpstream(t, srv, "", ""), ""); !berth.IsCode(err, berth.CodeUpstreamAuthFailed) {
		t.Errorf("no credential: %v", err)
	}
}

func newBasicServer(t *testing.T, user, pass string) string {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return serveLoopback(t, h)
}
