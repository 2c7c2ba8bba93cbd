package berth

import (
	"context"
	"encoding/json"
	"time"
)

// Manifest is a stored manifest of one repository: its exact bytes and what the
// registry derived from them when it was pushed.
type Manifest struct {
	Repository string
	Digest     Digest
	MediaType  string
	Content    []byte
	// ArtifactType is the manifest's artifactType, else its config's media type
	// for image manifests; it is what the referrers API reports and filters on.
	ArtifactType string
	// Subject is the digest of the manifest this one refers to, or empty.
	Subject     Digest
	Annotations map[string]string
	// References are the blobs and manifests this manifest needs; each must exist
	// in the repository when it is pushed, and keeps its target alive in GC.
	// (An index the pull-through cache stores may name children it does not
	// hold yet: see PutCachedManifest.)
	References []Reference
	Created    time.Time
}

// Size is the length of the manifest's content.
func (m *Manifest) Size() int64 { return int64(len(m.Content)) }

// Descriptor returns the manifest as a descriptor, as the referrers API lists it.
func (m *Manifest) Descriptor() Descriptor {
	return Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size(), ArtifactType: m.ArtifactType, Annotations: m.Annotations}
}

// Platform is what an image index says one of its manifests runs on.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String is os/architecture[/variant], as docker --platform takes it.
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// IndexManifest is one manifest an image index names.
type IndexManifest struct {
	Digest    Digest `json:"digest"`
	MediaType string `json:"media_type"`
	// Platform is nil when the index names none for it.
	Platform *Platform `json:"platform,omitempty"`
}

// IndexManifests returns the manifests m names, in its order, when it is an
// image index or a Docker manifest list (it references manifests); nil for
// an image manifest. Entries whose digest does not parse are left out: the
// registry checked every one when m was pushed.
func (m *Manifest) IndexManifests() []IndexManifest {
	isIndex := false
	for _, r := range m.References {
		isIndex = isIndex || r.Kind == ReferenceManifest
	}
	if !isIndex {
		return nil
	}
	var doc struct {
		Manifests []struct {
			MediaType string    `json:"mediaType"`
			Digest    string    `json:"digest"`
			Platform  *Platform `json:"platform"`
		} `json:"manifests"`
	}
	if json.Unmarshal(m.Content, &doc) != nil {
		return nil
	}
	out := make([]IndexManifest, 0, len(doc.Manifests))
	for _, e := range doc.Manifests {
		d, err := ParseDigest(e.Digest)
		if err != nil {
			continue
		}
		out = append(out, IndexManifest{Digest: d, MediaType: e.MediaType, Platform: e.Platform})
	}
	return out
}

// ReferenceKind says what a manifest reference points at.
type ReferenceKind string

const (
	ReferenceBlob     ReferenceKind = "blob"
	ReferenceManifest ReferenceKind = "manifest"
)

// Reference is one content address a manifest needs.
type Reference struct {
	Digest Digest
	Kind   ReferenceKind
}

// Descriptor points at content, as in the OCI image spec.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// ManifestStore persists manifests and tags.
type ManifestStore interface {
	// PutManifest stores m in m.Repository, creating the repository, and points
	// tag at it when tag is not empty, all in one transaction. Each reference must
	// exist in the repository, a blob as a BlobLink and a manifest as a stored
	// manifest, else manifest_blob_unknown naming the first missing digest and
	// nothing changes. Putting a digest that exists again keeps the first copy and
	// only moves the tag.
	PutManifest(ctx context.Context, m *Manifest, tag string) error
	// PutManifestKeepingTag is PutManifest, except that when tag points at
	// another manifest it returns tag_immutable (detail "digest": the one it
	// holds) and nothing changes, checked in the same transaction.
	PutManifestKeepingTag(ctx context.Context, m *Manifest, tag string) error
	// PutCachedManifest is PutManifest for the pull-through cache, which
	// stores what an upstream serves as its client pulls it: the manifests m
	// references (an index's children) need not be in the repository, since
	// a client pulls only its own platform's. Blob references must be, as
	// for PutManifest. The references to children not held are recorded all
	// the same, so a child stored later is linked to its index from then
	// on, by digest (kept by it in retention and eviction), with nothing
	// more to do. Every reader takes an index's child as possibly missing
	// (DeleteManifest may remove one as well). Pushes never use it.
	PutCachedManifest(ctx context.Context, m *Manifest, tag string) error
	// FindManifest returns the manifest that ref, a tag or a digest, names in
	// repo, or manifest_unknown.
	FindManifest(ctx context.Context, repo, ref string) (*Manifest, error)
	// DeleteManifest removes the manifest and every tag pointing at it, or
	// returns manifest_unknown.
	DeleteManifest(ctx context.Context, repo string, d Digest) error
	// DeleteTag removes one tag, leaving its manifest, or returns manifest_unknown.
	DeleteTag(ctx context.Context, repo, tag string) error
	// FindTags returns up to n of repo's tags in lexical (byte) order, those
	// after last when last is not empty; n < 0 means all. It returns name_unknown
	// when the repository does not exist.
	FindTags(ctx context.Context, repo, last string, n int) ([]string, error)
	// FindRepositories returns up to n repository names in lexical order, those
	// after last when last is not empty; n < 0 means all.
	FindRepositories(ctx context.Context, last string, n int) ([]string, error)
	// FindReferrers returns the descriptors of repo's manifests whose subject is
	// d, only those of artifactType when it is not empty, ordered by digest.
	FindReferrers(ctx context.Context, repo string, d Digest, artifactType string) ([]Descriptor, error)
	// FindManifestDigests returns the digest of every manifest of repo,
	// tagged or not, oldest (Created) first, then by digest; an empty slice
	// when it has none. (berth migrate copies manifests with it.)
	FindManifestDigests(ctx context.Context, repo string) ([]Digest, error)
}

// GCStore answers the questions garbage collection asks. Every decision that
// deletes is re-checked inside one transaction, so a concurrent push wins.
type GCStore interface {
	// FindUnreferencedBlobLinks returns links created before the given time that
	// no manifest of the same repository references.
	FindUnreferencedBlobLinks(ctx context.Context, createdBefore time.Time) ([]BlobLink, error)
	// DeleteBlobLinkIfUnreferenced removes the link if, checked in one
	// transaction, it is still older than createdBefore and still unreferenced;
	// it reports whether it did.
	DeleteBlobLinkIfUnreferenced(ctx context.Context, repo string, d Digest, createdBefore time.Time) (bool, error)
	// BlobInUse reports whether any repository links d or any manifest
	// references it.
	BlobInUse(ctx context.Context, d Digest) (bool, error)
}

// MetadataStore is everything a registry keeps besides blob bytes. The SQLite and
// PostgreSQL stores implement it and pass the same storetest suite.
type MetadataStore interface {
	ManifestStore
	BlobLinkStore
	UploadSessionStore
	GCStore
	IdentityStore
	RoleStore
	PipelineStore
	ConnectionStore
	RefreshTokenStore
	AuditStore
	WebhookStore
	AssertionStore
	LifecycleStore
	PeopleStore
	Close() error
}
