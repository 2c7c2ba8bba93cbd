package oci

import (
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth"
)

// getBlob serves a blob's bytes (GET, with Range) or its existence (HEAD).
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := berth.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := h.Meta.FindBlobLink(ctx, rt.Repo, d); err != nil {
		return blobUnknown(err, rt.Repo, d)
	}
	rc, info, err := h.Blobs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Docker-Content-Digest", d.String())
	hdr.Set("Etag", `"`+d.String()+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")
	if r.Method == http.MethodHead {
		hdr.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		hdr.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// ServeContent answers Range and If-None-Match and uses sendfile for files.
	if h.Meter == nil {
		http.ServeContent(w, r, "", time.Time{}, rc)
		return nil
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, rc)
	h.Meter.BlobBytesRead(cw.sent())
	return nil
}

// deleteBlob removes a blob from a repository; garbage collection frees its
// bytes once no repository holds it.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-blobs
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := berth.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	if err := h.Meta.UnlinkBlob(r.Context(), rt.Repo, d); err != nil {
		return blobUnknown(err, rt.Repo, d)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// blobUnknown states which blob is missing from which repository.
func blobUnknown(err error, repo string, d berth.Digest) error {
	if berth.IsCode(err, berth.CodeBlobUnknown) {
		return berth.Errorf(berth.CodeBlobUnknown, "blob %s is not in repository %s", d, repo).WithDetail("digest", d.String())
	}
	return err
}
