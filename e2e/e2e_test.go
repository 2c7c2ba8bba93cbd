package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// annotationRefName is the OCI layout annotation that names a tag.
const annotationRefName = "org.opencontainers.image.ref.name"

// randomOCIImage is an OCI image manifest with OCI media types throughout.
func randomOCIImage(t testing.TB, layers int, size int64) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i := 0; i < layers; i++ {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// withPlatform sets the os and architecture of an image's config.
func withPlatform(t testing.TB, img v1.Image, os, arch string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// layoutManifestDigest returns the digest of the manifest tagged tag in an
// OCI layout's index.json.
func layoutManifestDigest(t testing.TB, dir, tag string) v1.Hash {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Annotations[annotationRefName] == tag {
			return d.Digest
		}
	}
	t.Fatalf("tag %q not in %s/index.json: %+v", tag, dir, m.Manifests)
	return v1.Hash{}
}

func skopeoCreds(s *server, flag string) []string {
	if u, p, ok := s.creds(); ok {
		return []string{flag, u + ":" + p}
	}
	return nil
}

// TestSkopeoCopyImage copies a random OCI image from a layout directory into
// the registry with skopeo, copies it back out into another directory, and
// checks that the manifest digest is the same at every step.
func TestSkopeoCopyImage(t *testing.T) {
	needServer(t)
	skopeo := tool(t, "skopeo")
	s := startServer(t, t.TempDir())
	ctx := context.Background()

	src := filepath.Join(t.TempDir(), "src")
	img := randomOCIImage(t, 3, 64<<10)
	want := digestOf(t, img)
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: "v1"})); err != nil {
		t.Fatal(err)
	}

	dst := "docker://" + s.addr + "/e2e/skopeo:v1"
	args := []string{"--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false"}
	args = append(args, skopeoCreds(s, "--dest-creds")...)
	run(t, "", skopeo, append(args, "oci:"+src+":v1", dst)...)

	// The registry serves the same manifest, by tag and by digest.
	desc, err := remote.Head(s.ref(t, "e2e/skopeo:v1"), s.remoteOpts(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Fatalf("registry has %s for e2e/skopeo:v1, pushed %s", desc.Digest, want)
	}
	got, err := remote.Image(s.ref(t, "e2e/skopeo@"+want.String()), s.remoteOpts(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("validate pushed image: %v", err)
	}

	out := filepath.Join(t.TempDir(), "out")
	args = []string{"--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false"}
	args = append(args, skopeoCreds(s, "--src-creds")...)
	run(t, "", skopeo, append(args, dst, "oci:"+out+":v1")...)
	if got := layoutManifestDigest(t, out, "v1"); got != want {
		t.Fatalf("copied back out %s, pushed %s", got, want)
	}

	// skopeo inspect reads the manifest digest the registry reports.
	args = []string{"inspect", "--raw", "--tls-verify=false"}
	args = append(args, skopeoCreds(s, "--creds")...)
	raw := run(t, "", skopeo, append(args, dst)...)
	sum := sha256.Sum256([]byte(raw))
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want.String() {
		t.Fatalf("skopeo inspect --raw digest %s, pushed %s", got, want)
	}
}

// TestSkopeoCopyIndex copies a two-platform OCI index with --all and back.
func TestSkopeoCopyIndex(t *testing.T) {
	needServer(t)
	skopeo := tool(t, "skopeo")
	s := startServer(t, t.TempDir())
	ctx := context.Background()

	// The index is written by hand: go-containerregistry's mutate adds an
	// artifactType to index descriptors, which skopeo 1.9 would drop (and so
	// refuse --preserve-digests).
	src := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, arch := range []string{"amd64", "arm64"} {
		img := withPlatform(t, randomOCIImage(t, 2, 32<<10), "linux", arch)
		if err := p.WriteImage(img); err != nil {
			t.Fatal(err)
		}
		raw, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		index.Manifests = append(index.Manifests, v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Size:      int64(len(raw)),
			Digest:    digestOf(t, img),
			Platform:  &v1.Platform{OS: "linux", Architecture: arch},
		})
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := v1.SHA256(bytes.NewReader(rawIndex))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteBlob(want, io.NopCloser(bytes.NewReader(rawIndex))); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendDescriptor(v1.Descriptor{
		MediaType:   types.OCIImageIndex,
		Size:        int64(len(rawIndex)),
		Digest:      want,
		Annotations: map[string]string{annotationRefName: "multi"},
	}); err != nil {
		t.Fatal(err)
	}

	dst := "docker://" + s.addr + "/e2e/skopeo-index:multi"
	args := []string{"--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false"}
	args = append(args, skopeoCreds(s, "--dest-creds")...)
	run(t, "", skopeo, append(args, "oci:"+src+":multi", dst)...)

	got, err := remote.Index(s.ref(t, "e2e/skopeo-index:multi"), s.remoteOpts(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if d := digestOf(t, got); d != want {
		t.Fatalf("registry has %s, pushed %s", d, want)
	}
	if err := validate.Index(got); err != nil {
		t.Fatalf("validate pushed index: %v", err)
	}

	out := filepath.Join(t.TempDir(), "out")
	args = []string{"--insecure-policy", "copy", "--all", "--preserve-digests", "--src-tls-verify=false"}
	args = append(args, skopeoCreds(s, "--src-creds")...)
	run(t, "", skopeo, append(args, dst, "oci:"+out+":multi")...)
	if got := layoutManifestDigest(t, out, "multi"); got != want {
		t.Fatalf("copied back out %s, pushed %s", got, want)
	}
}

func orasAuth(s *server) []string {
	if u, p, ok := s.creds(); ok {
		return []string{"-u", u, "-p", p}
	}
	return nil
}

type orasDesc struct {
	Reference    string            `json:"reference"`
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Referrers    []orasDesc        `json:"referrers"`
	Manifests    []orasDesc        `json:"manifests"` // older oras JSON
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOrasArtifactReferrers pushes an artifact with oras, attaches a
// signature-like artifact to it (subject), finds that with oras discover and
// with the referrers API, and pulls both back byte for byte.
func TestOrasArtifactReferrers(t *testing.T) {
	needServer(t)
	oras := tool(t, "oras")
	s := startServer(t, t.TempDir())
	ctx := context.Background()

	work := t.TempDir()
	payload := randomBytes(t, 300<<10)
	sig := randomBytes(t, 512)
	if err := os.WriteFile(filepath.Join(work, "payload.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "payload.sig"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := s.addr + "/e2e/oras:v1"
	common := append([]string{"--plain-http"}, orasAuth(s)...)

	// Push the artifact.
	out := run(t, work, oras, append(append([]string{"push"}, common...),
		"--format", "json", "--artifact-type", "application/vnd.berth.test.artifact",
		ref, "payload.bin:application/vnd.berth.test.payload")...)
	var pushed orasDesc
	if err := json.Unmarshal([]byte(out), &pushed); err != nil {
		t.Fatalf("oras push output: %v\n%s", err, out)
	}
	if !strings.HasPrefix(pushed.Digest, "sha256:") {
		t.Fatalf("oras push: no digest in %s", out)
	}

	// Attach a signature whose subject is the artifact.
	attachArgs := append([]string{"attach"}, common...)
	if s.kind == "berth" {
		attachArgs = append(attachArgs, "--distribution-spec", "v1.1-referrers-api")
	}
	out = run(t, work, oras, append(attachArgs, "--format", "json",
		"--artifact-type", "application/vnd.berth.test.signature",
		"--annotation", "org.example.signed-by=e2e",
		ref, "payload.sig:application/vnd.berth.test.sig")...)
	var attached orasDesc
	if err := json.Unmarshal([]byte(out), &attached); err != nil {
		t.Fatalf("oras attach output: %v\n%s", err, out)
	}

	// oras discover finds it.
	discArgs := append([]string{"discover"}, common...)
	if s.kind == "berth" {
		discArgs = append(discArgs, "--distribution-spec", "v1.1-referrers-api")
	}
	out = run(t, work, oras, append(discArgs, "--format", "json", ref)...)
	var disc orasDesc
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	refs := append(disc.Referrers, disc.Manifests...)
	found := false
	for _, r := range refs {
		if r.Digest == attached.Digest {
			found = true
			if r.ArtifactType != "application/vnd.berth.test.signature" {
				t.Errorf("referrer artifactType %q", r.ArtifactType)
			}
		}
	}
	if !found {
		t.Fatalf("oras discover did not list %s:\n%s", attached.Digest, out)
	}
	// Filtering by another artifact type finds nothing.
	out = run(t, work, oras, append(discArgs, "--format", "json", "--artifact-type", "application/vnd.berth.none", ref)...)
	disc = orasDesc{}
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	if n := len(disc.Referrers) + len(disc.Manifests); n != 0 {
		t.Fatalf("oras discover --artifact-type application/vnd.berth.none listed %d referrers:\n%s", n, out)
	}

	// The referrers API itself, with and without a filter (berth only:
	// distribution 2.8 has no referrers API).
	if s.kind == "berth" {
		checkReferrersAPI(t, s, ctx, "e2e/oras", pushed.Digest, attached.Digest)
	}

	// Pull both back and compare bytes.
	pullDir := filepath.Join(work, "pulled")
	run(t, work, oras, append(append([]string{"pull"}, common...), "-o", pullDir, ref)...)
	compareFile(t, filepath.Join(pullDir, "payload.bin"), payload)
	sigDir := filepath.Join(work, "pulled-sig")
	run(t, work, oras, append(append([]string{"pull"}, common...), "-o", sigDir, s.addr+"/e2e/oras@"+attached.Digest)...)
	compareFile(t, filepath.Join(sigDir, "payload.sig"), sig)
}

func compareFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d pushed", path, len(got), len(want))
	}
}

func checkReferrersAPI(t *testing.T, s *server, ctx context.Context, repo, subject, referrer string) {
	t.Helper()
	client := authedClient(t, s, ctx, repo, transport.PullScope)
	get := func(query string) (*http.Response, v1.IndexManifest) {
		t.Helper()
		u := fmt.Sprintf("http://%s/v2/%s/referrers/%s%s", s.addr, repo, subject, query)
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != string(types.OCIImageIndex) {
			t.Errorf("GET %s: Content-Type %q", u, ct)
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatalf("GET %s: %v\n%s", u, err, body)
		}
		return resp, idx
	}
	_, idx := get("")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != referrer ||
		idx.Manifests[0].ArtifactType != "application/vnd.berth.test.signature" ||
		idx.Manifests[0].Annotations["org.example.signed-by"] != "e2e" {
		t.Fatalf("referrers of %s: %+v, want just %s with its artifactType and annotations", subject, idx.Manifests, referrer)
	}
	resp, idx := get("?artifactType=application/vnd.berth.none")
	if len(idx.Manifests) != 0 {
		t.Fatalf("filtered referrers: %+v", idx.Manifests)
	}
	if got := resp.Header.Get("OCI-Filters-Applied"); got != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q, want artifactType", got)
	}
}

// authedClient is an http.Client that authenticates the way the server asks
// (anonymous, Basic or a bearer token) for scope on repo.
func authedClient(t testing.TB, s *server, ctx context.Context, repo, scope string) *http.Client {
	t.Helper()
	r := s.ref(t, repo+":x").Context()
	rt, err := transport.NewWithContext(ctx, r.Registry, s.auth(), http.DefaultTransport, []string{r.Scope(scope)})
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: rt, Timeout: time.Minute}
}
