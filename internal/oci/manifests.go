package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth"
)

// Manifest media types the registry stores. Others are refused with
// manifest_invalid rather than stored unreadable.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

var manifestIsIndex = map[string]bool{
	ocispec.MediaTypeImageManifest: false,
	mediaTypeDockerManifest:        false,
	ocispec.MediaTypeImageIndex:    true,
	mediaTypeDockerManifestList:    true,
}

// manifestDoc is the union of the fields berth reads from image manifests and
// indexes, OCI and Docker alike.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// getManifest serves a manifest by tag or digest (GET) or its existence (HEAD).
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := validateReference(rt.Ref); err != nil {
		return err
	}
	if rt.Upstream != nil {
		return h.cachedManifest(w, r, rt)
	}
	m, err := h.Meta.FindManifest(r.Context(), rt.Repo, rt.Ref)
	if err != nil {
		return manifestUnknown(err, rt)
	}
	return h.writeManifest(w, r, rt, m)
}

// writeManifest answers a manifest GET or HEAD of rt with m, and tells
// Lifecycle of a GET.
func (h *Handler) writeManifest(w http.ResponseWriter, r *http.Request, rt route, m *berth.Manifest) error {
	hdr := w.Header()
	setDigestHeaders(hdr, m.Digest, int64(len(m.Content)), m.MediaType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Content)
		if h.Lifecycle != nil {
			h.Lifecycle.Pulled(rt.Repo, m.Digest)
		}
	}
	return nil
}

// putManifest stores a manifest under a tag or its digest after checking its
// form, its digest and that everything it references is in the repository.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	if err := validateReference(rt.Ref); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.MaxManifestSize+1))
	if err != nil {
		return fmt.Errorf("read manifest body: %w", err)
	}
	if int64(len(body)) > h.MaxManifestSize {
		return berth.Errorf(berth.CodeTooLarge, "manifest is larger than the %d bytes this registry accepts", h.MaxManifestSize)
	}
	m, sizes, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	m.Repository, m.Created = rt.Repo, h.Now()
	// The tags to point at the manifest: the reference when it is a tag;
	// for a push by digest, the tag query parameters of the distribution
	// spec after v1.1 (PUT …/manifests/DIGEST?tag=a&tag=b), answered with
	// one OCI-Tag header each.
	var tags []string
	if berth.IsDigestReference(rt.Ref) {
		want, _ := berth.ParseDigest(rt.Ref) // validated above
		m.Digest = berth.DigestOf(want.Algorithm(), body)
		if err := berth.VerifyDigest(want, m.Digest); err != nil {
			return err
		}
		tags = r.URL.Query()["tag"]
		for _, t := range tags {
			if err := berth.ValidateTag(t); err != nil {
				return err
			}
		}
	} else {
		m.Digest = berth.DigestOf(berth.SHA256, body)
		tags = []string{rt.Ref}
	}
	if err := h.checkReferences(r, rt.Repo, m, sizes); err != nil {
		return err
	}
	first := ""
	if len(tags) > 0 {
		first = tags[0]
	}
	keep := make([]bool, len(tags))
	if h.Lifecycle != nil {
		for i, t := range tags {
			var err error
			if keep[i], err = h.Lifecycle.CheckTag(ctx, rt.Repo, t, m.Digest); err != nil {
				return err
			}
		}
	}
	if len(tags) == 0 {
		if err := h.Meta.PutManifest(ctx, m, ""); err != nil {
			return err
		}
	}
	for i, t := range tags {
		if err := h.putTagged(ctx, m, t, keep[i]); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if h.Lifecycle != nil {
			p := berth.TagPush{Repository: rt.Repo, Tag: t, Digest: m.Digest, Pushed: m.Created}
			if rt.Caller != nil {
				p.PushedBy = rt.Caller.Actor.Name
			}
			h.Lifecycle.TagPushed(ctx, p)
		}
	}
	h.publish(r, berth.EventImagePushed, berth.ImageEventData{Repository: rt.Repo, Digest: m.Digest, Tag: first,
		MediaType: m.MediaType, Size: m.Size()}, rt)
	hdr := w.Header()
	for _, t := range tags {
		if berth.IsDigestReference(rt.Ref) {
			hdr.Add("OCI-Tag", t)
		}
	}
	hdr.Set("Location", "/v2/"+rt.Repo+"/manifests/"+m.Digest.String())
	hdr.Set("Docker-Content-Digest", m.Digest.String())
	if m.Subject != "" {
		hdr.Set("OCI-Subject", m.Subject.String())
	}
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// putTagged stores m under tag; an immutable tag (keep) only if it is new or
// already holds m, checked in the store's transaction. A tag another push
// created meanwhile is refused with the facts CheckTag states.
func (h *Handler) putTagged(ctx context.Context, m *berth.Manifest, tag string, keep bool) error {
	if !keep {
		return h.Meta.PutManifest(ctx, m, tag)
	}
	err := h.Meta.PutManifestKeepingTag(ctx, m, tag)
	if berth.IsCode(err, berth.CodeTagImmutable) {
		if _, full := h.Lifecycle.CheckTag(ctx, m.Repository, tag, m.Digest); full != nil {
			return full
		}
	}
	return err
}

// checkReferences states which referenced blob or manifest is missing, and
// which descriptor declares a size its blob does not have. The store checks
// existence again atomically; this pass is for a precise message.
func (h *Handler) checkReferences(r *http.Request, repo string, m *berth.Manifest, sizes map[berth.Digest]int64) error {
	var blobs []berth.Digest
	for _, ref := range m.References {
		if ref.Kind == berth.ReferenceBlob {
			blobs = append(blobs, ref.Digest)
		}
	}
	links, err := h.Meta.FindBlobLinks(r.Context(), repo, blobs)
	if err != nil {
		return err
	}
	for _, ref := range m.References {
		switch ref.Kind {
		case berth.ReferenceBlob:
			link, ok := links[ref.Digest]
			if !ok {
				return berth.Errorf(berth.CodeManifestBlobUnknown, "manifest references blob %s, which is not in repository %s", ref.Digest, repo).
					WithHint("push the blob to %s before the manifest", repo).WithDetail("digest", ref.Digest.String())
			}
			if want := sizes[ref.Digest]; want != link.Size {
				return berth.Errorf(berth.CodeManifestInvalid, "manifest declares blob %s with size %d, but it is %d bytes", ref.Digest, want, link.Size)
			}
		case berth.ReferenceManifest:
			if _, err := h.Meta.FindManifest(r.Context(), repo, ref.Digest.String()); berth.IsCode(err, berth.CodeManifestUnknown) {
				return berth.Errorf(berth.CodeManifestBlobUnknown, "index references manifest %s, which is not in repository %s", ref.Digest, repo).
					WithHint("push every manifest an index lists before the index").WithDetail("digest", ref.Digest.String())
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// parseManifest checks a manifest's form and derives what the registry keeps
// about it, and the size each reference declares. contentType is the request's
// Content-Type, which may be empty.
func parseManifest(contentType string, body []byte) (*berth.Manifest, map[berth.Digest]int64, error) {
	var doc manifestDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "manifest is not valid JSON: %v", err)
	}
	// One JSON document and nothing after it but white space: bytes after
	// it would be stored and served under a digest no parser agrees on.
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "the manifest holds more than one JSON document: bytes follow its closing brace").
			WithHint("send the manifest alone, as the digest is computed over it")
	}
	if doc.SchemaVersion != 2 {
		return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "manifest schemaVersion is %d; only 2 is accepted (Docker schema 1 is not supported)", doc.SchemaVersion)
	}
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.TrimSpace(mediaType)
	switch {
	case mediaType == "" && doc.MediaType != "":
		mediaType = doc.MediaType
	case mediaType == "" && doc.Manifests != nil:
		mediaType = ocispec.MediaTypeImageIndex
	case mediaType == "":
		mediaType = ocispec.MediaTypeImageManifest
	case doc.MediaType != "" && doc.MediaType != mediaType:
		return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "Content-Type is %s but the manifest's mediaType is %s", mediaType, doc.MediaType)
	}
	isIndex, known := manifestIsIndex[mediaType]
	if !known {
		return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "manifest media type %q is not supported: use an OCI image manifest or index, or a Docker schema 2 manifest or manifest list", mediaType)
	}
	m := &berth.Manifest{MediaType: mediaType, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations, Content: body}
	sizes := map[berth.Digest]int64{}
	add := func(field string, d ocispec.Descriptor, kind berth.ReferenceKind) error {
		dg, err := berth.ParseDigest(string(d.Digest))
		if err != nil {
			return berth.Errorf(berth.CodeManifestInvalid, "%s: %s", field, berth.AsError(err).Message)
		}
		if d.Size < 0 {
			return berth.Errorf(berth.CodeManifestInvalid, "%s: size %d is negative", field, d.Size)
		}
		m.References = append(m.References, berth.Reference{Digest: dg, Kind: kind})
		sizes[dg] = d.Size
		return nil
	}
	if isIndex {
		if doc.Config != nil || doc.Layers != nil {
			return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "an index (%s) has no config or layers", mediaType)
		}
		for i, d := range doc.Manifests {
			if err := add(fmt.Sprintf("manifests[%d]", i), d, berth.ReferenceManifest); err != nil {
				return nil, nil, err
			}
		}
	} else {
		if doc.Config == nil {
			return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "an image manifest (%s) needs a config descriptor", mediaType)
		}
		if doc.Manifests != nil {
			return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "an image manifest (%s) has no manifests list; push it as an index", mediaType)
		}
		if err := add("config", *doc.Config, berth.ReferenceBlob); err != nil {
			return nil, nil, err
		}
		for i, d := range doc.Layers {
			if nonDistributable(d.MediaType) {
				if _, err := berth.ParseDigest(string(d.Digest)); err != nil {
					return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "layers[%d]: %s", i, berth.AsError(err).Message)
				}
				continue // the spec lets these live elsewhere
			}
			if err := add(fmt.Sprintf("layers[%d]", i), d, berth.ReferenceBlob); err != nil {
				return nil, nil, err
			}
		}
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
	}
	if doc.Subject != nil {
		s, err := berth.ParseDigest(string(doc.Subject.Digest))
		if err != nil {
			return nil, nil, berth.Errorf(berth.CodeManifestInvalid, "subject: %s", berth.AsError(err).Message)
		}
		m.Subject = s // need not exist yet
	}
	return m, sizes, nil
}

// nonDistributable reports layers the spec allows a registry not to hold.
func nonDistributable(mediaType string) bool {
	return strings.HasPrefix(mediaType, "application/vnd.oci.image.layer.nondistributable.") ||
		mediaType == mediaTypeDockerForeignLayer
}

// deleteManifest removes a manifest by digest, or only a tag by name.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-tags
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-manifests
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := validateReference(rt.Ref); err != nil {
		return err
	}
	var err error
	if h.Lifecycle != nil {
		if berth.IsDigestReference(rt.Ref) {
			err = h.Lifecycle.CheckManifestDelete(r.Context(), rt.Repo, berth.Digest(rt.Ref))
		} else {
			_, err = h.Lifecycle.CheckTag(r.Context(), rt.Repo, rt.Ref, "")
		}
		if err != nil {
			return err
		}
	}
	if berth.IsDigestReference(rt.Ref) {
		err = h.Meta.DeleteManifest(r.Context(), rt.Repo, berth.Digest(rt.Ref))
	} else {
		err = h.Meta.DeleteTag(r.Context(), rt.Repo, rt.Ref)
	}
	if err != nil {
		return manifestUnknown(err, rt)
	}
	d := berth.ImageEventData{Repository: rt.Repo, Tag: rt.Ref}
	if berth.IsDigestReference(rt.Ref) {
		d.Digest, d.Tag = berth.Digest(rt.Ref), ""
	}
	h.publish(r, berth.EventImageDeleted, d, rt)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// publish tells Events, when set, that an image was pushed or deleted.
func (h *Handler) publish(r *http.Request, t berth.EventType, d berth.ImageEventData, rt route) {
	if h.Events == nil {
		return
	}
	if rt.Caller != nil {
		d.Actor = rt.Caller.Actor.Name
	}
	h.Events.Publish(r.Context(), berth.ImageEvent(t, d))
}

// validateReference checks a manifest reference: a digest or a tag.
func validateReference(ref string) error {
	if berth.IsDigestReference(ref) {
		_, err := berth.ParseDigest(ref)
		return err
	}
	return berth.ValidateTag(ref)
}

func manifestUnknown(err error, rt route) error {
	if berth.IsCode(err, berth.CodeManifestUnknown) {
		what := "tag"
		if berth.IsDigestReference(rt.Ref) {
			what = "manifest"
		}
		return berth.Errorf(berth.CodeManifestUnknown, "%s %s not found in repository %s", what, rt.Ref, rt.Repo).
			WithHint("list the repository's tags with GET /v2/%s/tags/list", rt.Repo)
	}
	return err
}
