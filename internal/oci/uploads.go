package oci

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth"
)

// startUpload opens an upload session, mounts a blob from another repository,
// or stores a whole blob sent with its digest in one request.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := berth.ParseDigest(mount)
		if err != nil {
			return err
		}
		mounted, err := h.mount(ctx, rt, d, q.Get("from"))
		if err != nil {
			return err
		}
		if mounted {
			return blobCreated(w, rt.Repo, d)
		}
		// Not mountable: the spec asks for an ordinary upload session instead.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := berth.ParseDigest(dg)
		if err != nil {
			return err
		}
		if err := h.putMonolithic(r, rt.Repo, d); err != nil {
			return err
		}
		return blobCreated(w, rt.Repo, d)
	}

	id := h.NewID()
	if err := h.Uploads.CreateUpload(ctx, id); err != nil {
		return err
	}
	if err := h.Meta.CreateUploadSession(ctx, berth.UploadSession{ID: id, Repository: rt.Repo, Created: h.Now()}); err != nil {
		_ = h.Uploads.DeleteUpload(ctx, id)
		return err
	}
	h.sessions.Put(id, rt.Repo)
	return uploadAccepted(w, rt.Repo, id, 0, http.StatusAccepted)
}

// mount links d into repo from the repository from, or, when from is empty, from
// any repository that holds it. It reports false when d cannot be mounted.
func (h *Handler) mount(ctx context.Context, rt route, d berth.Digest, from string) (bool, error) {
	repo := rt.Repo
	var link berth.BlobLink
	var err error
	if from != "" {
		if err := berth.ValidateRepositoryName(from); err != nil {
			return false, err
		}
		if err := h.mayMountFrom(ctx, rt.Caller, from); berth.IsCode(err, berth.CodeScopeNotGranted) {
			return false, err // the client asks for a token that has it, then retries
		} else if err != nil {
			return false, nil
		}
		link, err = h.Meta.FindBlobLink(ctx, from, d)
	} else {
		var repos []string
		repos, err = h.Meta.FindBlobRepositories(ctx, d)
		repos = slices.DeleteFunc(repos, func(r string) bool { return !h.mayRead(ctx, rt.Caller, r) })
		if err == nil && len(repos) == 0 {
			return false, nil
		}
		if err == nil {
			link, err = h.Meta.FindBlobLink(ctx, repos[0], d)
		}
	}
	if berth.IsCode(err, berth.CodeBlobUnknown) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Garbage collection deletes bytes only under the exclusive lock, so bytes
	// seen here stay until the link exists.
	unlock, err := h.lockCommit(ctx, d)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := h.Blobs.Stat(ctx, d); berth.IsCode(err, berth.CodeBlobUnknown) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if h.Lifecycle != nil {
		release, err := h.Lifecycle.ReserveQuota(ctx, repo, d, link.Size)
		if err != nil {
			return false, err
		}
		defer release()
	}
	err = h.Meta.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: link.Size, Created: h.Now()})
	return err == nil, err
}

// mayMountFrom returns nil when the caller may pull from repo, the source of
// a mount: a mount must never hand out a blob its caller could not read. A
// token without pull on repo gets scope_not_granted, as distribution does, so
// the client fetches a token naming both repositories.
func (h *Handler) mayMountFrom(ctx context.Context, caller *berth.Caller, repo string) error {
	if h.Guard == nil {
		return nil
	}
	return h.Guard.Authorize(ctx, caller, "repository", repo, "pull")
}

// mayRead reports whether the caller may pull from repo, by its roles and
// its token's grant: the sources an automatic mount (no from) may take a blob
// from. A token names the repositories it may read, so a token narrowed to
// one repository mounts from none other.
func (h *Handler) mayRead(ctx context.Context, caller *berth.Caller, repo string) bool {
	return h.Guard == nil || h.Guard.Authorize(ctx, caller, "repository", repo, "pull") == nil
}

// patchUpload appends a chunk, or the whole stream when no Content-Range is sent.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	size, err := h.appendChunk(r, rt)
	if err != nil {
		return err
	}
	return uploadAccepted(w, rt.Repo, rt.Ref, size, http.StatusAccepted)
}

// putUpload closes an upload, with an optional last chunk, and verifies its digest.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks
func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		return berth.Errorf(berth.CodeDigestInvalid, "closing an upload needs the blob's digest in the query: PUT …/blobs/uploads/%s?digest=sha256:…", rt.Ref)
	}
	d, err := berth.ParseDigest(dg)
	if err != nil {
		return err
	}
	// A PUT without bytes only closes the upload: the upload store is not
	// asked what it holds (a request to a remote store) unless a quota
	// needs it, which commit finds out.
	size := int64(-1)
	if r.ContentLength != 0 || r.Header.Get("Content-Range") != "" {
		size, err = h.appendChunk(r, rt)
	} else {
		err = h.ownSession(ctx, rt)
	}
	if err != nil {
		return err
	}
	if err := h.commit(ctx, rt.Repo, rt.Ref, d, rt.Ref, size); err != nil {
		return h.sessionEnded(rt, err)
	}
	h.sessions.Delete(rt.Ref)
	return blobCreated(w, rt.Repo, d)
}

// putMonolithic stores a blob sent whole with its digest (POST ?digest=). The
// bytes go through an unnamed upload so that only the short commit holds the
// commit lock, not the transfer.
func (h *Handler) putMonolithic(r *http.Request, repo string, d berth.Digest) error {
	ctx := r.Context()
	if h.Lifecycle != nil && r.ContentLength > 0 {
		// The size is announced: refuse before the bytes are accepted.
		if err := h.Lifecycle.CheckQuota(ctx, repo, d, r.ContentLength); err != nil {
			return err
		}
	}
	id := h.NewID()
	if err := h.Uploads.CreateUpload(ctx, id); err != nil {
		return err
	}
	size, err := h.appendBody(r, id, 0)
	if err == nil && r.ContentLength >= 0 && size != r.ContentLength {
		err = berth.Errorf(berth.CodeSizeInvalid, "Content-Length is %d but %d bytes arrived", r.ContentLength, size)
	}
	if err == nil {
		err = h.commit(ctx, repo, id, d, "", size)
	}
	if err != nil {
		_ = h.Uploads.DeleteUpload(ctx, id)
	}
	return err
}

// commit turns upload id into blob d and links it into repo, ending upload
// session when not "" in the same write. It holds the commit lock shared, so
// garbage collection cannot delete the blob between the two steps. size is
// what the upload holds, as the request just saw it (the quota is checked
// against it; asking the upload store again costs a remote store a
// request), or -1 when the request did not ask: then the upload store is
// asked only when a quota covers repo.
func (h *Handler) commit(ctx context.Context, repo, id string, d berth.Digest, session string, size int64) error {
	unlock, err := h.lockCommit(ctx, d)
	if err != nil {
		return err
	}
	defer unlock()
	if h.Lifecycle != nil {
		if size < 0 {
			if size, err = h.quotaSize(ctx, repo, id); err != nil {
				return err
			}
		}
		if size >= 0 {
			release, err := h.Lifecycle.ReserveQuota(ctx, repo, d, size)
			if err != nil {
				return err
			}
			defer release()
		}
	}
	info, err := h.Uploads.CommitUpload(ctx, id, d)
	if err != nil {
		return err
	}
	if h.Meter != nil {
		h.Meter.BlobBytesWritten(info.Size)
	}
	link := berth.BlobLink{Repository: repo, Digest: d, Size: info.Size, Created: h.Now()}
	if session != "" {
		return h.Meta.LinkUploadedBlob(ctx, link, session)
	}
	return h.Meta.LinkBlob(ctx, link)
}

// quotaChecksChunk reports whether a chunk of announced length must be
// counted against a quota covering repo before its bytes are accepted.
func (h *Handler) quotaChecksChunk(ctx context.Context, r *http.Request, repo string) (bool, error) {
	if h.Lifecycle == nil || r.ContentLength <= 0 {
		return false, nil
	}
	return h.Lifecycle.QuotaCovers(ctx, repo)
}

// quotaSize returns what upload id holds when a quota covers repo, else -1.
func (h *Handler) quotaSize(ctx context.Context, repo, id string) (int64, error) {
	covered, err := h.Lifecycle.QuotaCovers(ctx, repo)
	if err != nil || !covered {
		return -1, err
	}
	info, err := h.Uploads.StatUpload(ctx, id)
	return info.Size, err
}

// appendChunk checks the session and Content-Range and appends the body of
// a PATCH (always, even nothing) or of a PUT that carries one.
func (h *Handler) appendChunk(r *http.Request, rt route) (int64, error) {
	ctx := r.Context()
	cr := r.Header.Get("Content-Range")
	quota, err := h.quotaChecksChunk(ctx, r, rt.Repo)
	if err != nil {
		return 0, err
	}
	if cr == "" && !quota {
		// No offset to check and no quota to count the upload's size
		// against: the bytes go at the upload's end, and the upload store
		// is not asked its size first (a request to a remote one).
		if err := h.ownSession(ctx, rt); err != nil {
			return 0, err
		}
		size, err := h.appendBody(r, rt.Ref, berth.AppendAtEnd)
		return size, h.sessionEnded(rt, err)
	}
	info, err := h.session(ctx, rt)
	if err != nil {
		return 0, err
	}
	if cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return 0, err
		}
		if start != info.Size {
			return 0, berth.Errorf(berth.CodeRangeInvalid, "chunk starts at byte %d but upload %s holds %d bytes: chunks must be sent in order", start, rt.Ref, info.Size).
				WithHint("ask GET /v2/%s/blobs/uploads/%s for the Range received so far and continue from its end", rt.Repo, rt.Ref).
				WithDetail("range", rangeHeader(info.Size))
		}
		if r.ContentLength >= 0 && end-start+1 != r.ContentLength {
			return 0, berth.Errorf(berth.CodeSizeInvalid, "Content-Range %q spans %d bytes but Content-Length is %d", cr, end-start+1, r.ContentLength)
		}
		// A body without Content-Length (chunked) must hold exactly the
		// range too: a chunk of another size is refused whole.
		r.Body = &exactBody{ReadCloser: r.Body, left: end - start + 1, header: cr}
	}
	if quota {
		// The chunk's size is announced: refuse before its bytes are
		// accepted, counting the upload so far (its digest is not known yet).
		if err := h.Lifecycle.CheckQuota(ctx, rt.Repo, "", info.Size+r.ContentLength); err != nil {
			return 0, err
		}
	}
	size, err := h.appendBody(r, rt.Ref, info.Size)
	return size, h.sessionEnded(rt, err)
}

// exactBody fails a body that holds more or fewer bytes than its
// Content-Range spans; the upload store then keeps none of it.
type exactBody struct {
	io.ReadCloser
	left   int64
	header string
}

func (b *exactBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one more than the range, to see a longer body
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		return 0, berth.Errorf(berth.CodeSizeInvalid, "the chunk holds more bytes than Content-Range %q spans", b.header)
	}
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		return n, berth.Errorf(berth.CodeSizeInvalid, "the chunk holds %d bytes fewer than Content-Range %q spans", b.left, b.header)
	}
	return n, err
}

// appendBody appends r's body to upload id at offset, and counts the bytes
// that arrived. A body of announced length is handed over as a
// berth.SizedReader, which a remote store sends in one request.
func (h *Handler) appendBody(r *http.Request, id string, offset int64) (int64, error) {
	var body io.Reader = r.Body
	var counted *countingReader
	if h.Meter != nil {
		counted = &countingReader{r: r.Body}
		body = counted
	}
	if r.ContentLength > 0 {
		body = &berth.SizedReader{R: body, N: r.ContentLength}
	}
	size, err := h.Uploads.AppendUpload(r.Context(), id, offset, body)
	if counted != nil {
		h.Meter.UploadBytesReceived(counted.n)
	}
	return size, err
}

// session returns the state of upload rt.Ref, which must belong to rt.Repo.
func (h *Handler) session(ctx context.Context, rt route) (berth.UploadInfo, error) {
	if err := h.ownSession(ctx, rt); err != nil {
		return berth.UploadInfo{}, err
	}
	info, err := h.Uploads.StatUpload(ctx, rt.Ref)
	return info, h.sessionEnded(rt, err)
}

// ownSession checks that upload rt.Ref is a session of rt.Repo, without
// asking the upload store what it holds. The repository of a session seen
// lately is remembered (sessionRepos); whether the upload still exists is
// then the upload store's to say, which the caller asks next.
func (h *Handler) ownSession(ctx context.Context, rt route) error {
	repo, ok := h.sessions.Get(rt.Ref)
	if !ok {
		s, err := h.Meta.FindUploadSession(ctx, rt.Ref)
		if err != nil {
			return h.sessionEnded(rt, err)
		}
		repo = s.Repository
		h.sessions.Put(rt.Ref, repo)
	}
	if repo != rt.Repo {
		return berth.Errorf(berth.CodeBlobUploadUnknown, "no upload %s in repository %s: it belongs to another repository", rt.Ref, rt.Repo).
			WithHint("continue the upload under the repository that started it, or start a new one with POST /v2/%s/blobs/uploads/", rt.Repo)
	}
	return nil
}

// sessionEnded words err, when it says upload rt.Ref is unknown (to the
// metadata store or the upload store), for the session's repository, and
// forgets the session; any other err is returned as it is.
func (h *Handler) sessionEnded(rt route, err error) error {
	if !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		return err
	}
	h.sessions.Delete(rt.Ref)
	return berth.Errorf(berth.CodeBlobUploadUnknown, "no upload %s in repository %s: it finished, was cancelled or expired", rt.Ref, rt.Repo).
		WithHint("start a new upload with POST /v2/%s/blobs/uploads/", rt.Repo)
}

// uploadStatus reports how many bytes an upload holds.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	info, err := h.session(r.Context(), rt)
	if err != nil {
		return err
	}
	return uploadAccepted(w, rt.Repo, rt.Ref, info.Size, http.StatusNoContent)
}

// cancelUpload abandons an upload and frees its bytes.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#canceling-an-upload
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	// Not from memory: cancelling a session that ended answers
	// blob_upload_unknown, and only the metadata store knows it ended.
	h.sessions.Delete(rt.Ref)
	if err := h.ownSession(ctx, rt); err != nil {
		return err
	}
	h.sessions.Delete(rt.Ref)
	if err := h.Uploads.DeleteUpload(ctx, rt.Ref); err != nil {
		return err
	}
	if err := h.Meta.DeleteUploadSession(ctx, rt.Ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func uploadAccepted(w http.ResponseWriter, repo, id string, size int64, status int) error {
	hdr := w.Header()
	hdr.Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
	hdr.Set("Range", rangeHeader(size))
	hdr.Set("Docker-Upload-UUID", id)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

func blobCreated(w http.ResponseWriter, repo string, d berth.Digest) error {
	hdr := w.Header()
	hdr.Set("Location", "/v2/"+repo+"/blobs/"+d.String())
	hdr.Set("Docker-Content-Digest", d.String())
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// rangeHeader is the Range an upload reports: the inclusive span received.
// An empty upload reports 0-0, as distribution does and clients expect.
func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}

// parseContentRange reads "START-END" (inclusive), with an optional "bytes "
// or "bytes=" prefix that some clients send.
func parseContentRange(v string) (start, end int64, err error) {
	s := strings.TrimSpace(v)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes="), "bytes ")
	a, b, ok := strings.Cut(s, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
	}
	if ok && err == nil {
		b, _, _ = strings.Cut(b, "/")
		end, err = strconv.ParseInt(b, 10, 64)
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, berth.Errorf(berth.CodeRangeInvalid, "Content-Range %q is not START-END with START <= END", v)
	}
	return start, end, nil
}
