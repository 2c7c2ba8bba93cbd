package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/s3"
)

// blobStore is what every command needs of the blob store: the bytes of
// blobs and of unfinished uploads, in one place that replicas share.
type blobStore interface {
	berth.BlobStore
	berth.UploadStore
}

var (
	_ blobStore = (*disk.Store)(nil)
	_ blobStore = (*s3.Store)(nil)
)

// openBlobStore opens the blob store cfg.Blobs names: the storage folder of
// the data folder when it is empty, or the bucket of an s3:// URL, signed
// with the AWS_* credentials getenv returns (the adapter never reads the
// environment). Its errors name the bucket and the access key id, never the
// secret key.
func openBlobStore(ctx context.Context, cfg Config, getenv func(string) string) (blobStore, error) {
	if cfg.Blobs == "" {
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
		return disk.New(filepath.Join(cfg.Data, "storage"))
	}
	sc, err := s3.ParseURL(cfg.Blobs)
	if err != nil {
		return nil, err
	}
	sc.Credentials = s3.CredentialsFromEnv(getenv)
	return s3.New(ctx, sc)
}

// validateBlobs checks the blob store choice without reaching it: empty, or
// an s3:// URL that s3.ParseURL accepts.
func (c Config) validateBlobs() error {
	if c.Blobs == "" {
		return nil
	}
	if !strings.HasPrefix(c.Blobs, "s3://") {
		return berth.Errorf(berth.CodeInvalid, "blobs %q is not an s3:// URL", describeBlobs(c.Blobs)).
			WithHint("berth serve --blobs s3://BUCKET?endpoint=HOST:PORT&region=REGION, or leave blobs empty for the storage folder of the data folder")
	}
	_, err := s3.ParseURL(c.Blobs)
	return err
}

// describeBlobs names the blob store for logs and messages. An s3:// URL
// holds no credential (ParseURL refuses userinfo), but anything else is
// shown only by its scheme.
func describeBlobs(blobs string) string {
	switch {
	case blobs == "":
		return "disk"
	case strings.HasPrefix(blobs, "s3://"):
		if i := strings.IndexAny(blobs, "@"); i >= 0 {
			return "s3://(redacted)"
		}
		return blobs
	}
	if i := strings.Index(blobs, "://"); i > 0 {
		return blobs[:i] + "://…"
	}
	return "(not a URL)"
}
