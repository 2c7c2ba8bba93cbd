package berth

import (
	"context"
	"io"
	"time"
)

// BlobInfo describes stored blob bytes.
type BlobInfo struct {
	Digest  Digest
	Size    int64
	ModTime time.Time
}

// BlobStore holds blob bytes by digest. It knows nothing of repositories: which
// repository may see a blob is recorded by a BlobLinkStore.
type BlobStore interface {
	// Stat returns blob_unknown when d is not stored.
	Stat(ctx context.Context, d Digest) (BlobInfo, error)
	// Open returns the blob's content for reading and seeking, or blob_unknown.
	Open(ctx context.Context, d Digest) (io.ReadSeekCloser, BlobInfo, error)
	// Put stores r's bytes under d. It verifies the digest while writing and makes
	// the blob visible only once it is complete and synced to disk: a crash leaves
	// either the whole blob or none. On a mismatch it returns digest_invalid and
	// stores nothing; when size >= 0 and the length differs, size_invalid.
	// A store may tell a VerifiedReader r when it matched.
	Put(ctx context.Context, d Digest, size int64, r io.Reader) (BlobInfo, error)
	// Delete removes d. Deleting an absent blob is not an error.
	Delete(ctx context.Context, d Digest) error
	// Walk calls fn for every stored blob in no particular order. An error from
	// fn stops the walk and is returned.
	Walk(ctx context.Context, fn func(BlobInfo) error) error
}

// BlobRedirector is an optional power of a BlobStore: it hands out a URL
// from which a plain GET, with no Authorization header, returns a blob's
// bytes, so that the registry can answer a blob GET with a redirect once it
// has authorized the request.
type BlobRedirector interface {
	// BlobURL returns such a URL for d, or "" when redirects are off and the
	// registry must serve the bytes itself. It does not check that d is
	// stored: the caller has done so (Stat) to answer with its size. The URL
	// carries its own short-lived authorization, never the client's.
	BlobURL(ctx context.Context, d Digest) (string, error)
}

// UploadInfo describes the bytes of an unfinished upload.
type UploadInfo struct {
	ID      string
	Size    int64
	ModTime time.Time
}

// SizedReader is a body whose length was announced before it is read, as an
// HTTP request's Content-Length is: R holds exactly N bytes. An UploadStore
// given one to append may rely on N to send the bytes to its backend in one
// request of that length rather than in parts; a body that holds fewer or
// more bytes than N is then an error of the append.
type SizedReader struct {
	R io.Reader
	N int64
}

func (s *SizedReader) Read(p []byte) (int, error) { return s.R.Read(p) }

// VerifiedReader is a body given to BlobStore.Put that wants to know as
// soon as the store has read it whole and found it matches the size and
// digest, before the store makes the blob durable: the pull-through cache
// then hands its client the last byte of a blob it streams without making
// it wait for the disk. A store that can tell calls Verified once; the blob
// is stored only if Put returns no error.
type VerifiedReader interface {
	io.Reader
	Verified()
}

// AppendAtEnd, as UploadStore.AppendUpload's offset, appends at the upload's
// current end: a caller with no offset of its own to check (a PATCH without
// Content-Range) need not ask StatUpload first, which costs a remote store
// a request.
const AppendAtEnd int64 = -1

// UploadStore holds the bytes of unfinished uploads and turns a finished one into
// a blob of the BlobStore it belongs to. Upload ids are chosen by the caller,
// are safe path components ([A-Za-z0-9-]), and are fresh: an id is created
// once (berth's are 128 random bits), so a store need not look for what an
// earlier upload of the same id left behind. StatUpload, AppendUpload and
// CommitUpload return blob_upload_unknown for an upload that does not exist
// (never created, committed or deleted, through any replica): the /v2/
// handler relies on it instead of reading the upload's session again.
type UploadStore interface {
	// CreateUpload starts an empty upload.
	CreateUpload(ctx context.Context, id string) error
	// StatUpload returns the upload's size, or blob_upload_unknown.
	StatUpload(ctx context.Context, id string) (UploadInfo, error)
	// AppendUpload writes r's bytes at offset and returns the new size. offset must
	// equal the current size, else range_invalid and nothing is written; or be
	// AppendAtEnd, for the current size whatever it is. The bytes
	// are durable when it returns without error; after an error the upload holds
	// the previous content plus possibly a prefix of r, and StatUpload tells how
	// much, so a client can resume.
	AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	// CommitUpload verifies the upload's content against d and moves it into the
	// blob store atomically, then forgets the upload. On a mismatch it returns
	// digest_invalid and leaves the upload as it was.
	CommitUpload(ctx context.Context, id string, d Digest) (BlobInfo, error)
	// DeleteUpload removes the upload. Deleting an absent upload is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// WalkUploads calls fn for every unfinished upload.
	WalkUploads(ctx context.Context, fn func(UploadInfo) error) error
}

// BlobLink records that a repository holds a blob: it was uploaded or mounted
// there. Only linked blobs can be read through the repository.
type BlobLink struct {
	Repository string
	Digest     Digest
	Size       int64
	// Created is when the link was made or last refreshed.
	Created time.Time
}

// BlobLinkStore records which repositories hold which blobs.
type BlobLinkStore interface {
	// LinkBlob records the link, creating the repository when needed. Linking
	// again refreshes Created.
	LinkBlob(ctx context.Context, link BlobLink) error
	// LinkUploadedBlob is LinkBlob and DeleteUploadSession(session) in one
	// write: the end of a pushed upload.
	LinkUploadedBlob(ctx context.Context, link BlobLink, session string) error
	// FindBlobLink returns blob_unknown unless repo holds d.
	FindBlobLink(ctx context.Context, repo string, d Digest) (BlobLink, error)
	// FindBlobLinks returns the links of those of ds that repo holds, by
	// digest; a digest repo does not hold has no entry. It asks a remote
	// database once for all of them.
	FindBlobLinks(ctx context.Context, repo string, ds []Digest) (map[Digest]BlobLink, error)
	// UnlinkBlob removes d from repo, or returns blob_unknown.
	UnlinkBlob(ctx context.Context, repo string, d Digest) error
	// FindBlobRepositories returns the repositories holding d, sorted.
	FindBlobRepositories(ctx context.Context, d Digest) ([]string, error)
}

// UploadSession is an upload in progress: which repository it is for and when it
// started. Its bytes live in an UploadStore under the same id.
type UploadSession struct {
	ID         string
	Repository string
	Created    time.Time
}

// UploadSessionStore records upload sessions so that they survive a restart and
// can be collected when abandoned.
type UploadSessionStore interface {
	// CreateUploadSession records s; conflict when the id exists.
	CreateUploadSession(ctx context.Context, s UploadSession) error
	// FindUploadSession returns blob_upload_unknown when no session has id.
	FindUploadSession(ctx context.Context, id string) (UploadSession, error)
	// DeleteUploadSession removes the session. Deleting an absent one is not an error.
	DeleteUploadSession(ctx context.Context, id string) error
	// FindUploadSessions returns the sessions created before the given time.
	FindUploadSessions(ctx context.Context, createdBefore time.Time) ([]UploadSession, error)
}

// MaxUploadIDLength bounds an upload id.
const MaxUploadIDLength = 64

// ValidUploadID reports whether id is 1 to MaxUploadIDLength characters of
// [A-Za-z0-9-]: one safe path component or object key segment, in every
// blob store.
func ValidUploadID(id string) bool {
	if id == "" || len(id) > MaxUploadIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// UploadIDInvalid is the refusal of an upload created with an id that
// ValidUploadID refuses.
func UploadIDInvalid(id string) *Error {
	return Errorf(CodeBlobUploadInvalid, "upload id %q is not 1 to %d characters of [A-Za-z0-9-]", Truncate(id, MaxUploadIDLength), MaxUploadIDLength).
		WithHint("upload ids come from the registry: start the upload with POST /v2/NAME/blobs/uploads/ and follow its Location")
}

// UploadUnknown is the refusal of an upload id the store does not hold.
func UploadUnknown(id string) *Error {
	return Errorf(CodeBlobUploadUnknown, "upload %q does not exist", Truncate(id, MaxUploadIDLength)).
		WithHint("start a new upload with POST /v2/NAME/blobs/uploads/")
}
