package s3

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CleanTemp removes what a crash or a lost connection left behind and was
// last touched before olderThan: multipart uploads never completed or
// aborted (of Puts, large appends and commits; invisible, but billed), and
// the objects of uploads whose marker is gone (a delete or commit that
// stopped halfway), but for the data a blob's pointer names: each such
// upload costs a request at the blob's key. Garbage collection calls it with a cutoff well in the
// past, so that writes in progress are left alone.
func (s *Store) CleanTemp(olderThan time.Time) error {
	ctx := context.Background()
	var errs []error
	for _, prefix := range []string{s.prefix + "blobs/", s.uploadsPrefix()} {
		for mu := range s.client.ListIncompleteUploads(ctx, s.bucket, prefix, true) {
			if mu.Err != nil {
				errs = append(errs, fmt.Errorf("list multipart uploads: %w", mu.Err))
				break
			}
			if !mu.Initiated.Before(olderThan) {
				continue
			}
			if err := s.core.AbortMultipartUpload(ctx, s.bucket, mu.Key, mu.UploadID); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("abort multipart upload of %s: %w", mu.Key, err))
			}
		}
	}
	uploads, err := s.listUploads(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, u := range uploads {
		if u.exists || !u.modTime.Before(olderThan) {
			continue
		}
		if err := s.removeKeys(ctx, s.disposable(ctx, u)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean temporary objects: %w", err)
	}
	return nil
}
