package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth"
)

// errExists is returned by an exclusive write whose key exists.
var errExists = errors.New("key exists")

// smallBuffers hold the first bytes of every write: smallWrite bytes.
var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallWrite); return &b }}

// smallWrite is the size of the buffer a write reads its body's first bytes
// into; a body that fits is sent from there.
const smallWrite = 64 << 10

// write stores r's bytes at key. When they fit in one part it reads them into
// memory and sends one PUT; else it sends them as a multipart upload, reading
// the next part while the previous one is sent. Every byte read is fed to h
// when h is not nil. Before it makes the object visible (the PUT, or the
// completion of the multipart upload) it calls check with the number of bytes
// read; an error from check, from r (returned in the chain) or from the
// service leaves nothing at key, and an abandoned multipart upload is
// aborted. When exclusive, the object is only created if key does not exist
// (If-None-Match: *), else errExists: of writers racing for one key exactly
// one succeeds.
func (s *Store) write(ctx context.Context, key string, r io.Reader, h hash.Hash, exclusive bool, check func(n int64) error) (minio.UploadInfo, int64, error) {
	var opts minio.PutObjectOptions
	if exclusive {
		opts.SetMatchETagExcept("*")
	}
	exists := func(err error) error {
		if exclusive && isPreconditionFailed(err) {
			return errExists
		}
		return err
	}
	// Most bodies are small (configs, the layers of small images, small
	// chunks): they are read into a small buffer, and a part buffer is taken
	// only for a body larger than that, so that many small writes at once do
	// not hold a part buffer (8 MiB by default) each.
	head := smallBuffers.Get().(*[]byte)
	defer smallBuffers.Put(head)
	n, err := io.ReadFull(r, *head)
	body := (*head)[:n]
	if err == nil && s.partSize > int64(len(*head)) {
		first := s.buffers.get()
		defer s.buffers.put(first)
		copy(*first, body)
		var m int
		m, err = io.ReadFull(r, (*first)[n:])
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the head was read: the body is not empty
		}
		body = (*first)[:n+m]
	}
	if h != nil {
		h.Write(body)
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		if err := check(int64(len(body))); err != nil {
			return minio.UploadInfo{}, 0, err
		}
		info, err := s.putBytes(ctx, key, body, opts)
		if err != nil {
			return minio.UploadInfo{}, 0, exists(err)
		}
		return info, int64(len(body)), nil
	case nil:
	default:
		return minio.UploadInfo{}, 0, err
	}

	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{})
	if err != nil {
		return minio.UploadInfo{}, 0, err
	}
	completed := false
	defer func() {
		if !completed {
			// Best effort: CleanTemp aborts what is left.
			_ = s.core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, key, uploadID)
		}
	}()
	parts, total, err := s.sendParts(ctx, key, uploadID, body, r, h)
	if err != nil {
		return minio.UploadInfo{}, 0, err
	}
	if err := check(total); err != nil {
		return minio.UploadInfo{}, 0, err
	}
	info, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, opts)
	if err != nil {
		return minio.UploadInfo{}, 0, exists(err)
	}
	completed = true
	return info, total, nil
}

// putStream sends the n bytes of r to key in one PUT of that length, streamed
// as r is read, with no part buffer: an append whose length was announced
// (berth.SizedReader) costs one request, and a service such as versitygw's
// posix backend writes its bytes once, where a multipart upload's parts are
// written and then assembled. Every byte is fed to h when h is not nil. The
// object appears only once the service has all n bytes: a body that ends
// early, or that holds more (seen before its last byte is handed over),
// fails the request and nothing is at key. When exclusive, as in write. A
// streamed request cannot be sent again, so unlike putBytes it is not
// retried on isFolderRemoved: the multipart path it replaces was not either.
func (s *Store) putStream(ctx context.Context, key string, r io.Reader, n int64, h hash.Hash, exclusive bool) (minio.UploadInfo, error) {
	var opts minio.PutObjectOptions
	if exclusive {
		opts.SetMatchETagExcept("*")
	}
	body := &exactReader{r: r, n: n, left: n, h: h}
	info, err := s.core.PutObject(ctx, s.bucket, key, body, n, "", "", opts)
	if body.err != nil {
		return minio.UploadInfo{}, body.err // the body's own failure, not the request's
	}
	if exclusive && isPreconditionFailed(err) {
		return minio.UploadInfo{}, errExists
	}
	return info, err
}

// exactReader reads exactly left bytes of r, feeding them to h. It fails when
// r ends before them and, before it returns the last of them, when r holds
// more: a request that sends what it reads then never completes with other
// bytes than r's. Its first failure is kept in err.
type exactReader struct {
	r       io.Reader
	n, left int64
	h       hash.Hash
	err     error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if e.h != nil {
		e.h.Write(p[:n])
	}
	switch {
	case e.left == 0:
		var one [1]byte
		if m, perr := io.ReadFull(e.r, one[:]); m > 0 {
			e.err = berth.Errorf(berth.CodeSizeInvalid, "the body holds more than the %d bytes its length announced", e.n).
				WithHint("send the chunk again with a Content-Length equal to its size, or without one (chunked)")
		} else if perr != io.EOF {
			e.err = perr
		}
	case err == io.EOF:
		e.err = io.ErrUnexpectedEOF
	case err != nil:
		e.err = err
	}
	if e.err != nil {
		return 0, e.err
	}
	return n, nil
}

// sendParts uploads first as part 1, then the rest of r in parts of
// s.partSize, each read (and hashed) while the previous one is sent. It
// returns the parts and the bytes read.
func (s *Store) sendParts(ctx context.Context, key, uploadID string, first []byte, r io.Reader, h hash.Hash) ([]minio.CompletePart, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		num int
		buf []byte
	}
	second := s.buffers.get()
	defer s.buffers.put(second)
	free := make(chan []byte, 2) // never blocks: only two buffers exist
	free <- *second
	jobs := make(chan job, 1)
	var (
		parts []minio.CompletePart
		uerr  error
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for j := range jobs {
			p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, j.num, bytes.NewReader(j.buf), int64(len(j.buf)), minio.PutObjectPartOptions{})
			if err != nil {
				uerr = fmt.Errorf("upload part %d: %w", j.num, err)
				cancel()
				return
			}
			parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
			free <- j.buf[:cap(j.buf)]
		}
	}()
	finish := func(total int64, err error) ([]minio.CompletePart, int64, error) {
		close(jobs)
		<-done
		if uerr != nil && (err == nil || errors.Is(err, context.Canceled)) {
			err = uerr // the cancel was the sender's
		}
		return parts, total, err
	}

	total := int64(len(first))
	jobs <- job{1, first}
	for num := 2; ; num++ {
		var buf []byte
		select {
		case buf = <-free:
		case <-done:
			return finish(total, nil) // the sender failed
		}
		if err := ctx.Err(); err != nil {
			return finish(total, err)
		}
		n, rerr := io.ReadFull(r, buf)
		if h != nil {
			h.Write(buf[:n])
		}
		total += int64(n)
		if n > 0 {
			if num > maxParts {
				return finish(total, berth.Errorf(berth.CodeTooLarge, "a stream of more than %d bytes is more than this store writes at once (%d parts of %d bytes)", maxParts*s.partSize, maxParts, s.partSize).
					WithHint("upload the blob in chunks, or raise part_size in the --blobs URL"))
			}
			jobs <- job{num, buf[:n]}
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return finish(total, nil)
		default:
			return finish(total, rerr)
		}
	}
}

// putBytes PUTs b at key, as one object, sending the request again when the
// service refused it because a concurrent delete removed a folder on the
// key's path, or could not parse it (see retryCreate).
func (s *Store) putBytes(ctx context.Context, key string, b []byte, opts minio.PutObjectOptions) (minio.UploadInfo, error) {
	return retryCreate(ctx, func() (minio.UploadInfo, error) {
		return s.core.PutObject(ctx, s.bucket, key, bytes.NewReader(b), int64(len(b)), "", "", opts)
	})
}

// createAttempts bounds the requests retryCreate sends.
const createAttempts = 5

// retryCreate sends create, a request that writes one object, up to
// createAttempts times while it fails with isFolderRemoved or isUnparsed, waiting a little
// longer before each new attempt (or until ctx ends). Such a failure wrote
// nothing, so a retry creates the object at most once, and a conditional
// create keeps its condition. Any other outcome is returned at once.
func retryCreate[T any](ctx context.Context, create func() (T, error)) (T, error) {
	wait := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := create()
		if !(isFolderRemoved(err) || isUnparsed(err)) || attempt == createAttempts {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
