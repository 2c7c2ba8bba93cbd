package oci

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth"
)

// referrers lists the manifests whose subject is the given digest, as an image
// index, filtered by artifactType when asked. It answers 200 with an empty list
// when nothing refers to the digest, as the spec requires.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := berth.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := h.Meta.FindReferrers(r.Context(), rt.Repo, d, artifactType)
	if err != nil {
		return err
	}
	if descs == nil {
		descs = []berth.Descriptor{}
	}
	b, err := json.Marshal(struct {
		SchemaVersion int                `json:"schemaVersion"`
		MediaType     string             `json:"mediaType"`
		Manifests     []berth.Descriptor `json:"manifests"`
	}{2, ocispec.MediaTypeImageIndex, descs})
	if err != nil {
		return fmt.Errorf("encode referrers: %w", err)
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
