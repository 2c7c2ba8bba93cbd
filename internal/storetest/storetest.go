package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// Open returns an empty store for one subtest. It may register cleanups of its
// own (removing a database, say); Run closes the store it returns, before those
// cleanups run.
type Open func(t *testing.T) berth.MetadataStore

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Open) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"BlobLinkStore", blobLinkTests},
		{"UploadSessionStore", uploadSessionTests},
		{"ManifestStore", manifestTests},
		{"RepositoryDeleter", repositoryTests},
		{"GCStore", gcTests},
		{"IdentityStore", identityTests},
		{"RoleStore", roleTests},
		{"PipelineStore", pipelineTests},
		{"ConnectionStore", connectionTests},
		{"RefreshTokenStore", refreshTokenTests},
		{"AuditStore", auditTests},
		{"WebhookStore", webhookTests},
		{"AssertionStore", replayTests},
		{"UpstreamStore", upstreamTests},
		{"LifecycleStore", lifecycleTests},
		{"PeopleStore", peopleTests},
		{"Export", exportTests},
		{"Concurrency", concurrencyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.fn(t, s)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s berth.MetadataStore)
}

// base is the suite's epoch: a whole millisecond, as every time the suite passes.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

// digest returns the sha256 digest of s, a stand-in for some content.
func digest(s string) berth.Digest { return berth.DigestOf(berth.SHA256, []byte(s)) }

func blobRef(d berth.Digest) berth.Reference {
	return berth.Reference{Digest: d, Kind: berth.ReferenceBlob}
}

func manifestRef(d berth.Digest) berth.Reference {
	return berth.Reference{Digest: d, Kind: berth.ReferenceManifest}
}

const (
	imageManifest = "application/vnd.oci.image.manifest.v1+json"
	imageIndex    = "application/vnd.oci.image.index.v1+json"
)

// newManifest returns a manifest of repo whose content is made from name (so
// distinct names give distinct digests) and which needs refs.
func newManifest(repo, name string, created time.Time, refs ...berth.Reference) *berth.Manifest {
	content := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"name":%q}`, imageManifest, name))
	return &berth.Manifest{
		Repository:   repo,
		Digest:       berth.DigestOf(berth.SHA256, content),
		MediaType:    imageManifest,
		Content:      content,
		ArtifactType: "application/vnd.oci.image.config.v1+json",
		References:   refs,
		Created:      created,
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code berth.Code) {
	t.Helper()
	if got := berth.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// newIndex returns an image index of repo, made from name, that lists the
// manifests children.
func newIndex(repo, name string, created time.Time, children ...berth.Digest) *berth.Manifest {
	var refs []berth.Reference
	for _, d := range children {
		refs = append(refs, manifestRef(d))
	}
	m := newManifest(repo, name, created, refs...)
	m.MediaType, m.ArtifactType = imageIndex, ""
	return m
}

// link links d (of the given size) into repo at created.
func link(t *testing.T, s berth.MetadataStore, repo string, d berth.Digest, created time.Time) {
	t.Helper()
	must(t, s.LinkBlob(ctx(t), berth.BlobLink{Repository: repo, Digest: d, Size: 42, Created: created}))
}

// pushImage links the blobs and puts a manifest referencing them, tagged when
// tag is not empty, all at created.
func pushImage(t *testing.T, s berth.MetadataStore, repo, name, tag string, created time.Time, blobs ...berth.Digest) *berth.Manifest {
	t.Helper()
	var refs []berth.Reference
	for _, d := range blobs {
		link(t, s, repo, d, created)
		refs = append(refs, blobRef(d))
	}
	m := newManifest(repo, name, created, refs...)
	must(t, s.PutManifest(ctx(t), m, tag))
	return m
}
