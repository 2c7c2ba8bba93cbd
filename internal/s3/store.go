package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-dev/berth"
)

var (
	_ berth.BlobStore      = (*Store)(nil)
	_ berth.UploadStore    = (*Store)(nil)
	_ berth.TempCleaner    = (*Store)(nil)
	_ berth.BlobRedirector = (*Store)(nil)
)

// Store is a blob store and upload store in one bucket (under a prefix) of an
// S3-compatible service. It keeps nothing in memory between calls, so any
// number of Stores, in any number of processes, may share the bucket.
type Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	prefix string // "" or ending in "/"

	partSize      int64
	presign       bool
	presignExpiry time.Duration
	pointerMin    int64 // see pointer.go; 0: no pointers are written; tests lower it

	buffers *partBuffers // of partSize
	states  stateMemo    // sha256 states after the data objects written here

	// onStep, when set (tests only), is called at each named step of a
	// pointing commit (point), so that a test can interleave another
	// request there.
	onStep func(step string)
}

// step tells a test's onStep that a commit reached step.
func (s *Store) step(name string) {
	if s.onStep != nil {
		s.onStep(name)
	}
}

// New returns a store on the bucket cfg names and checks that the bucket
// exists, so that a wrong endpoint, region, credential or bucket fails at
// start rather than on the first push.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.check(); err != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "blob store: %v", err).
			WithHint("write the --blobs URL as %s", urlFormat)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	cr := cfg.Credentials
	transport := cfg.transport
	if transport == nil {
		tr, err := minio.DefaultTransport(!cfg.Insecure)
		if err != nil {
			return nil, fmt.Errorf("blob store s3://%s: %w", cfg.Bucket, err)
		}
		transport = tr
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken),
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    serviceTransport{next: transport},
	})
	if err != nil {
		return nil, fmt.Errorf("blob store s3://%s: %w", cfg.Bucket, err)
	}
	s := &Store{
		client:        client,
		core:          minio.Core{Client: client},
		bucket:        cfg.Bucket,
		partSize:      cfg.PartSize,
		presign:       cfg.Presign,
		presignExpiry: cfg.PresignExpiry,
	}
	if cfg.Pointers {
		s.pointerMin = pointerMin
	}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	s.buffers = partBuffersOf(s.partSize)
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if isCredentialRefused(err) {
		return nil, berth.Errorf(berth.CodeInvalid, "blob store s3://%s at %s refused %s: %s", cfg.Bucket, cfg.Endpoint, cr, minio.ToErrorResponse(err).Code).
			WithHint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the configuration file's credentials) to a key that may read and write the bucket")
	}
	if err != nil {
		return nil, fmt.Errorf("blob store s3://%s at %s (%s): %w", cfg.Bucket, cfg.Endpoint, cr, err)
	}
	if !ok {
		return nil, berth.Errorf(berth.CodeInvalid, "bucket %s does not exist at %s", cfg.Bucket, cfg.Endpoint).
			WithHint("create the bucket, or correct the bucket name or endpoint in the --blobs URL")
	}
	return s, nil
}

// blobKey returns the key of d, which must have come from berth.ParseDigest.
func (s *Store) blobKey(d berth.Digest) string {
	enc := d.Encoded()
	return s.prefix + "blobs/" + d.Algorithm() + "/" + enc[:2] + "/" + enc
}

func blobUnknown(d berth.Digest) error {
	return berth.Errorf(berth.CodeBlobUnknown, "blob %s is not stored", d.Short())
}

// Stat returns blob_unknown when d is not stored.
func (s *Store) Stat(ctx context.Context, d berth.Digest) (berth.BlobInfo, error) {
	d, err := berth.ParseDigest(string(d))
	if err != nil {
		return berth.BlobInfo{}, err
	}
	info, _, _, err := s.statBlob(ctx, d)
	return info, err
}

// Open returns the blob's content, or blob_unknown, in one GET: its
// response tells the size, and its body is what the reader returns. After a
// Seek elsewhere the next Read sends a ranged GET; Seek itself costs no
// request. A pointer costs one GET more, of the data it names.
func (s *Store) Open(ctx context.Context, d berth.Digest) (io.ReadSeekCloser, berth.BlobInfo, error) {
	d, err := berth.ParseDigest(string(d))
	if err != nil {
		return nil, berth.BlobInfo{}, err
	}
	obj, oi, err := s.getObject(ctx, s.blobKey(d), "")
	if isNotFound(err) {
		return nil, berth.BlobInfo{}, blobUnknown(d)
	}
	if err != nil {
		return nil, berth.BlobInfo{}, fmt.Errorf("open blob %s: %w", d, err)
	}
	if p, ok := s.pointerOf(oi); ok {
		obj.Close()
		return s.openPointed(ctx, d, p, oi.LastModified)
	}
	return obj, berth.BlobInfo{Digest: d, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Put streams r to d's key while hashing it: in one PUT when it fits in one
// part, else as a multipart upload of PartSize parts, which S3 shows at the key
// only once it is completed. It completes it only when the size and digest
// match, so a mismatch, a failing reader or a crash leaves nothing at the key
// (an abandoned multipart upload is invisible, and CleanTemp aborts it).
func (s *Store) Put(ctx context.Context, d berth.Digest, size int64, r io.Reader) (berth.BlobInfo, error) {
	d, err := berth.ParseDigest(string(d))
	if err != nil {
		return berth.BlobInfo{}, err
	}
	h := berth.NewHash(d.Algorithm())
	if size >= 0 {
		// One byte more than declared, to notice a longer body without
		// storing all of it.
		r = io.LimitReader(r, size+1)
	}
	check := func(n int64) error {
		if size >= 0 && n != size {
			return sizeInvalid(d, size, n)
		}
		return berth.VerifyDigest(d, berth.DigestFromHash(d.Algorithm(), h))
	}
	info, n, err := s.write(ctx, s.blobKey(d), r, h, false, check)
	if err != nil {
		if berth.AsError(err) != nil && !errors.Is(err, errExists) {
			return berth.BlobInfo{}, err
		}
		return berth.BlobInfo{}, fmt.Errorf("put blob %s: %w", d, err)
	}
	return berth.BlobInfo{Digest: d, Size: n, ModTime: modTime(info.LastModified)}, nil
}

// sizeInvalid reports a body whose length differs from the declared size; a
// longer body was read only up to one byte past the declared size.
func sizeInvalid(d berth.Digest, declared, got int64) error {
	sent := fmt.Sprintf("%d were sent", got)
	if got > declared {
		sent = "more were sent"
	}
	return berth.Errorf(berth.CodeSizeInvalid, "blob %s was declared as %d bytes but %s", d.Short(), declared, sent).
		WithHint("declare the length of the exact bytes the digest was computed from")
}

// Delete removes d. Deleting an absent blob is not an error. A pointer is
// removed before the data it names, so that no pointer names missing data.
func (s *Store) Delete(ctx context.Context, d berth.Digest) error {
	d, err := berth.ParseDigest(string(d))
	if err != nil {
		return err
	}
	_, p, isPointer, err := s.statBlob(ctx, d)
	if berth.IsCode(err, berth.CodeBlobUnknown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.blobKey(d), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	if isPointer {
		s.removePointed(ctx, p, d)
	}
	return nil
}

// Walk lists the blobs/ keys and calls fn for each that names a digest. A blob
// deleted after its listing page was read may still be reported. The size of
// a pointer costs a request: the listing shows the pointer's, which is 0.
func (s *Store) Walk(ctx context.Context, fn func(berth.BlobInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn stops the walk
	base := s.prefix + "blobs/"
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("walk blobs: %w", oi.Err)
		}
		d, ok := parseBlobKey(strings.TrimPrefix(oi.Key, base))
		if !ok {
			continue
		}
		info := berth.BlobInfo{Digest: d, Size: oi.Size, ModTime: oi.LastModified}
		if mayBePointer(d, oi.Size) {
			pi, _, _, err := s.statBlob(ctx, d)
			if berth.IsCode(err, berth.CodeBlobUnknown) {
				continue // deleted since it was listed
			}
			if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
			info.Size = pi.Size
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// parseBlobKey parses ALG/XX/HEX.
func parseBlobKey(k string) (berth.Digest, bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 3 {
		return "", false
	}
	d, err := berth.ParseDigest(parts[0] + ":" + parts[2])
	if err != nil || d.Encoded()[:2] != parts[1] {
		return "", false
	}
	return d, true
}

// BlobURL returns a presigned GET URL of d's key (of the data a pointer
// names), valid for the configured expiry, or "" when the store was
// configured without presign. It reads d's key to tell a pointer.
func (s *Store) BlobURL(ctx context.Context, d berth.Digest) (string, error) {
	if !s.presign {
		return "", nil
	}
	d, err := berth.ParseDigest(string(d))
	if err != nil {
		return "", err
	}
	key := s.blobKey(d)
	if _, p, isPointer, err := s.statBlob(ctx, d); err != nil {
		return "", err
	} else if isPointer {
		key = p.key
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, s.presignExpiry, nil)
	if err != nil {
		return "", fmt.Errorf("presign blob %s: %w", d, err)
	}
	return u.String(), nil
}

// isCredentialRefused tells a request the service refused for its
// credentials: unknown key, wrong secret, or a key without access.
func isCredentialRefused(err error) bool {
	if err == nil {
		return false
	}
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken":
		return true
	}
	return false
}

// isNotFound tells a missing key (or upload) by the service's status and code.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" || r.Code == "NoSuchUpload"
}

// isFolderRemoved tells the refusal of a create whose key's folder was
// removed while the create made it. versitygw's posix backend keeps objects
// as files, removes the folders a delete leaves empty, and makes a new key's
// folders with a MkdirAll that a concurrent removal defeats: the create then
// fails with ExistingObjectIsDirectory (409), having written nothing. S3
// itself has no folders and never answers so. The same code answers a create
// whose key is a folder of other keys, which berth's layout never makes:
// retried, that fails again.
func isFolderRemoved(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "ExistingObjectIsDirectory"
}

// isUnparsed tells an answer serviceTransport marked: a 400 naming no S3
// error, so the service could not parse the request and carried out nothing,
// and a create may be sent again.
func isUnparsed(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == unparsedCode
}

// isPreconditionFailed tells a conditional request that lost: the key
// exists (If-None-Match: *) or changed (If-Match). 409 is what S3 answers to
// a conditional write that races another.
func isPreconditionFailed(err error) bool {
	if err == nil {
		return false
	}
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" ||
		r.Code == "ConditionalRequestConflict"
}
