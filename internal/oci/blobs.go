package oci

import (
	"bytes"
	"io"
	"net/http"
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
	link, err := h.Meta.FindBlobLink(ctx, rt.Repo, d)
	if err != nil {
		if rt.Upstream != nil && berth.IsCode(err, berth.CodeBlobUnknown) {
			return h.cachedBlob(w, r, rt, d)
		}
		return blobUnknown(err, rt.Repo, d)
	}
	hdr := w.Header()
	if r.Method == http.MethodHead {
		// The link records the blob's size, and bytes outlive every link to
		// them (garbage collection deletes them only once none is left), so a
		// HEAD asks the blob store nothing: no object-store request at all.
		hdr["Content-Type"] = octetStreamValue
		hdr["Cache-Control"] = cacheForeverValue
		hdr["Accept-Ranges"] = bytesValue
		setDigestHeaders(hdr, d, link.Size, "")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if done, err := h.redirectBlob(w, r, d); done || err != nil {
		return err
	}
	small, ok, err := h.openSmall(ctx, d, link.Size)
	if err != nil {
		return err
	}
	var rc io.ReadSeeker
	var size int64
	if ok {
		size = int64(len(small))
	} else {
		f, info, err := h.Blobs.Open(ctx, d)
		if err != nil {
			return err
		}
		defer f.Close()
		rc, size = f, info.Size
	}
	if plainGET(r) {
		// The whole blob: what ServeContent would send, without its
		// allocations; a file still goes out by sendfile (io.Copy finds
		// the ResponseWriter's ReadFrom).
		hdr["Content-Type"] = octetStreamValue
		hdr["Cache-Control"] = cacheForeverValue
		hdr["Accept-Ranges"] = bytesValue
		setDigestHeaders(hdr, d, size, "")
		w.WriteHeader(http.StatusOK)
		var n int64
		if ok {
			m, _ := w.Write(small)
			n = int64(m)
		} else {
			n, _ = io.Copy(w, rc)
		}
		if h.Meter != nil {
			h.Meter.BlobBytesRead(n)
		}
		return nil
	}
	if ok {
		rc = bytes.NewReader(small)
	}
	setBlobHeaders(hdr, d, -1)
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

// setBlobHeaders sets what every answer about blob d says, and its
// Content-Length when size is not negative.
func setBlobHeaders(hdr http.Header, d berth.Digest, size int64) {
	hdr["Content-Type"] = octetStreamValue
	hdr["Cache-Control"] = cacheForeverValue
	setDigestHeaders(hdr, d, size, "")
}

// redirectBlob answers an authorized blob GET of a linked blob (whose bytes
// a link guarantees) with 307 to a URL the blob store hands out
// (berth.BlobRedirector); done is false when the store offers none and the registry must
// send the bytes itself. The client follows the redirect with a plain GET:
// its Authorization header is never part of the URL, and clients do not send
// it to another host. A 307 keeps the method and any Range header. The bytes
// a client fetches there are not counted by the Meter.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
func (h *Handler) redirectBlob(w http.ResponseWriter, r *http.Request, d berth.Digest) (done bool, err error) {
	rd, ok := h.Blobs.(berth.BlobRedirector)
	if !ok {
		return false, nil
	}
	u, err := rd.BlobURL(r.Context(), d)
	if err != nil || u == "" {
		return false, err
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", d.String())
	hdr.Set("Location", u)
	hdr.Set("Cache-Control", "no-store") // the URL expires; never cache the redirect
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true, nil
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
