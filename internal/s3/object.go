package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// object reads an object's bytes from the body of the GET that opened it,
// and after a Seek elsewhere from a ranged GET sent at the next Read. Every
// GET is pinned to the ETag of the first, so a reader never mixes the bytes
// of two versions of a key. It is not safe for concurrent use.
type object struct {
	s         *Store
	ctx       context.Context
	key, etag string
	size      int64

	body    io.ReadCloser // the open GET's body, or nil
	bodyPos int64         // the offset body reads from next
	pos     int64         // the offset of the next Read
	closed  bool
}

// getObject sends the GET that opens key (pinned to etag when not empty)
// and returns its reader and what the response told of the object.
func (s *Store) getObject(ctx context.Context, key, etag string) (*object, minio.ObjectInfo, error) {
	var opts minio.GetObjectOptions
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, minio.ObjectInfo{}, err
		}
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	return &object{s: s, ctx: ctx, key: key, etag: oi.ETag, size: oi.Size, body: body}, oi, nil
}

func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, errors.New("read of a closed blob")
	}
	if o.body != nil && o.bodyPos != o.pos {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		if o.pos >= o.size {
			return 0, io.EOF
		}
		var opts minio.GetObjectOptions
		if err := opts.SetMatchETag(o.etag); err != nil {
			return 0, err
		}
		if err := opts.SetRange(o.pos, o.size-1); err != nil {
			return 0, err
		}
		body, _, _, err := o.s.core.GetObject(o.ctx, o.s.bucket, o.key, opts)
		if err != nil {
			return 0, fmt.Errorf("read %s from %d: %w", o.key, o.pos, err)
		}
		o.body, o.bodyPos = body, o.pos
	}
	n, err := o.body.Read(p)
	o.pos += int64(n)
	o.bodyPos += int64(n)
	if err == io.EOF && o.pos < o.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Seek moves the offset of the next Read. It costs no request: the body
// open is kept, and is read on if the next Read starts where it is (as
// after http.ServeContent's Seek to the end to learn the size and back).
func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.size
	default:
		return o.pos, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return o.pos, errors.New("seek: negative position")
	}
	o.pos = offset
	return offset, nil
}

func (o *object) Close() error {
	o.closed = true
	if o.body == nil {
		return nil
	}
	err := o.body.Close()
	o.body = nil
	return err
}
