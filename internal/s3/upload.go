package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth"
)

const (
	markerName = "upload"  // uploads/ID/upload: the upload exists
	dataDir    = "data/"   // uploads/ID/data/START: the bytes appended at START
	stateDir   = "sha256/" // uploads/ID/sha256/END: the sha256 state after END bytes
	offsetLen  = 20        // decimal digits of START and END, zero-padded to sort
)

func (s *Store) uploadsPrefix() string         { return s.prefix + "uploads/" }
func (s *Store) uploadPrefix(id string) string { return s.uploadsPrefix() + id + "/" }

func offsetName(off int64) string {
	return fmt.Sprintf("%0*d", offsetLen, off)
}

// segment is one object of an upload's data: the bytes one append wrote.
type segment struct {
	start, size int64
	key, etag   string
}

// upload is what the listing of uploads/ID/ tells of an upload.
type upload struct {
	id      string
	exists  bool             // the marker is there
	modTime time.Time        // of the newest object
	segs    []segment        // contiguous from 0, in order
	size    int64            // the end of segs
	states  map[int64]string // END -> key of a saved sha256 state
	kept    []kept           // kept markers: the data may be a blob's bytes
	keys    []string         // every key under uploads/ID/
}

// parseUpload reads an upload from the objects under its prefix. Data objects
// form a chain from offset 0, each starting where the previous one ends; an
// object off the chain (which no append writes) is ignored.
func parseUpload(id, prefix string, objs []minio.ObjectInfo) upload {
	u := upload{id: id, states: map[int64]string{}}
	var segs []segment
	for _, o := range objs {
		u.keys = append(u.keys, o.Key)
		if o.LastModified.After(u.modTime) {
			u.modTime = o.LastModified
		}
		name := strings.TrimPrefix(o.Key, prefix)
		switch {
		case name == markerName:
			u.exists = true
		case strings.HasPrefix(name, dataDir):
			if off, ok := parseOffset(strings.TrimPrefix(name, dataDir)); ok && o.Size > 0 {
				segs = append(segs, segment{start: off, size: o.Size, key: o.Key, etag: trimETag(o.ETag)})
			}
		case strings.HasPrefix(name, keptDir):
			if d, ok := parseKept(strings.TrimPrefix(name, keptDir)); ok {
				u.kept = append(u.kept, kept{key: o.Key, d: d})
			}
		case strings.HasPrefix(name, stateDir):
			if off, ok := parseOffset(strings.TrimPrefix(name, stateDir)); ok {
				u.states[off] = o.Key
			}
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	for _, sg := range segs {
		if sg.start != u.size {
			break
		}
		u.segs = append(u.segs, sg)
		u.size += sg.size
	}
	return u
}

func parseOffset(s string) (int64, bool) {
	if len(s) != offsetLen {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func trimETag(e string) string { return strings.Trim(e, `"`) }

// loadUpload lists uploads/ID/.
func (s *Store) loadUpload(ctx context.Context, id string) (upload, error) {
	prefix := s.uploadPrefix(id)
	var objs []minio.ObjectInfo
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return upload{}, fmt.Errorf("list %s: %w", prefix, o.Err)
		}
		objs = append(objs, o)
	}
	return parseUpload(id, prefix, objs), nil
}

// CreateUpload starts an empty upload by creating its marker object, only if
// there is none: one request. It does not look for what an earlier upload of
// the id left, since ids are fresh (berth.UploadStore); were one reused over
// such debris, its appends would be refused with range_invalid and its
// commit would verify the digest as always. An id that is not 1 to 64
// characters of [A-Za-z0-9-] is blob_upload_invalid; an id in use is conflict.
func (s *Store) CreateUpload(ctx context.Context, id string) error {
	if !berth.ValidUploadID(id) {
		return berth.UploadIDInvalid(id)
	}
	var opts minio.PutObjectOptions
	opts.SetMatchETagExcept("*")
	_, err := s.putBytes(ctx, s.uploadPrefix(id)+markerName, nil, opts)
	if isPreconditionFailed(err) {
		return berth.Errorf(berth.CodeConflict, "upload %s exists", id)
	}
	if err != nil {
		return fmt.Errorf("create upload %s: %w", id, err)
	}
	return nil
}

// StatUpload returns the upload's size, or blob_upload_unknown. Its ModTime
// is that of its newest object.
func (s *Store) StatUpload(ctx context.Context, id string) (berth.UploadInfo, error) {
	if !berth.ValidUploadID(id) {
		return berth.UploadInfo{}, berth.UploadUnknown(id)
	}
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return berth.UploadInfo{}, fmt.Errorf("stat upload %s: %w", id, err)
	}
	if !u.exists {
		return berth.UploadInfo{}, berth.UploadUnknown(id)
	}
	return berth.UploadInfo{ID: id, Size: u.size, ModTime: u.modTime}, nil
}

// errEmpty stops write from storing an empty segment.
var errEmpty = errors.New("nothing to append")

// AppendUpload writes r's bytes as one new object, uploads/ID/data/OFFSET,
// created only if no object has that key: of two appends at one offset, on
// any replicas, exactly one succeeds and the other gets range_invalid. A
// berth.SizedReader of more than smallWrite bytes (and at most the 5 GiB one
// PUT may carry) is streamed in one PUT of its length; another large body is
// streamed as a multipart upload of that object; neither is held whole.
// The bytes are hashed as they pass; when the sha256 state after offset is
// known (saved, offset is 0, or the data before offset is at most stateFree
// bytes, read again), the state after the new end is saved beside them once
// that end is past stateFree, so that a sha256 commit need not read the data. On an error nothing of r
// is kept: the upload holds what it held, and r's error is in the chain.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	if !berth.ValidUploadID(id) {
		return 0, berth.UploadUnknown(id)
	}
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("append to upload %s: %w", id, err)
	}
	if !u.exists {
		return 0, berth.UploadUnknown(id)
	}
	if offset == berth.AppendAtEnd {
		offset = u.size
	}
	if offset != u.size {
		return u.size, rangeInvalid(id, u.size, offset)
	}
	var h hash.Hash
	if offset == 0 {
		h = sha256.New()
	} else {
		h = s.loadState(ctx, u, offset)
		if h == nil && offset <= stateFree {
			h = s.hashData(ctx, u) // no state is saved this short
		}
	}
	key := s.uploadPrefix(id) + dataDir + offsetName(offset)
	var (
		info minio.UploadInfo
		n    int64
	)
	if sr, ok := r.(*berth.SizedReader); ok && sr.N > smallWrite && sr.N <= maxPartSize {
		info, err = s.putStream(ctx, key, sr.R, sr.N, h, true)
		n = sr.N
	} else {
		info, n, err = s.write(ctx, key, r, h, true, func(n int64) error {
			if n == 0 {
				return errEmpty
			}
			return nil
		})
	}
	switch {
	case errors.Is(err, errEmpty):
		return offset, nil
	case errors.Is(err, errExists):
		// Another append at this offset won.
		size := offset
		if u, lerr := s.loadUpload(ctx, id); lerr == nil {
			size = u.size
		}
		return size, rangeInvalid(id, size, offset)
	case err != nil:
		return offset, fmt.Errorf("append to upload %s at %d: %w", id, offset, err)
	}
	size := offset + n
	if h != nil {
		s.states.remember(key, trimETag(info.ETag), h)
	}
	if h != nil && size > stateFree {
		// Best effort: without it a commit reads the data to hash it.
		_ = s.saveState(ctx, id, size, trimETag(info.ETag), h)
	}
	return size, nil
}

func rangeInvalid(id string, size, offset int64) error {
	return berth.Errorf(berth.CodeRangeInvalid, "upload %s holds %d bytes, so the next chunk starts at %d, not %d", id, size, size, offset).
		WithHint("ask for the upload's status and resume from the offset it reports").
		WithDetail("size", size)
}

// CommitUpload verifies the upload against d, then assembles its data objects
// at d's key, server-side where S3 allows it, and only then removes the
// upload. The digest is checked before anything is written at d's key: a
// sha256 digest against the hash state this Store remembers or saved when
// one matches the upload's last data object, else by reading every data
// object. Reads and copies are
// pinned to the ETags listed, so the blob holds exactly the bytes verified.
// The blob appears at once when the assembly completes; a crash before leaves
// no blob and the upload intact, a crash after leaves the blob and an upload
// that commits again. On a mismatch it returns digest_invalid and leaves the
// upload as it was.
func (s *Store) CommitUpload(ctx context.Context, id string, d berth.Digest) (berth.BlobInfo, error) {
	if !berth.ValidUploadID(id) {
		return berth.BlobInfo{}, berth.UploadUnknown(id)
	}
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	if !u.exists {
		return berth.BlobInfo{}, berth.UploadUnknown(id)
	}
	d, err = berth.ParseDigest(string(d))
	if err != nil {
		return berth.BlobInfo{}, err
	}
	got, err := s.uploadDigest(ctx, u, d.Algorithm())
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	if err := berth.VerifyDigest(d, got); err != nil {
		return berth.BlobInfo{}, err
	}
	if sg, ok := s.pointable(u); ok {
		mod, err := s.point(ctx, u, sg, d)
		if err != nil {
			return berth.BlobInfo{}, fmt.Errorf("commit upload %s as %s: %w", id, d, err)
		}
		s.states.forget(u)
		return berth.BlobInfo{Digest: d, Size: u.size, ModTime: mod}, nil
	}
	mod, err := s.assemble(ctx, u, s.blobKey(d))
	if err != nil {
		return berth.BlobInfo{}, fmt.Errorf("commit upload %s as %s: %w", id, d, err)
	}
	// The blob is stored and the commit ends the upload's session, so the
	// order removeUpload keeps is not needed: one request takes every
	// object. Whatever a failure leaves (even the marker without the data)
	// is debris for the stale-upload collection and CleanTemp.
	_ = s.removeKeys(ctx, s.disposable(ctx, u))
	s.states.forget(u)
	return berth.BlobInfo{Digest: d, Size: u.size, ModTime: mod}, nil
}

// uploadDigest returns the digest of u's data under alg.
func (s *Store) uploadDigest(ctx context.Context, u upload, alg string) (berth.Digest, error) {
	if alg == berth.SHA256 {
		if h := s.loadState(ctx, u, u.size); h != nil {
			return berth.DigestFromHash(alg, h), nil
		}
	}
	h := berth.NewHash(alg)
	if err := s.hashSegments(ctx, u, h); err != nil {
		return "", err
	}
	return berth.DigestFromHash(alg, h), nil
}

// hashSegments writes u's data, read from its data objects, to h.
func (s *Store) hashSegments(ctx context.Context, u upload, h hash.Hash) error {
	for _, sg := range u.segs {
		if err := s.readSegment(ctx, sg, 0, sg.size, h); err != nil {
			return err
		}
	}
	return nil
}

// readSegment copies length bytes of sg from off to w, reading the object
// only while its ETag is the one listed.
func (s *Store) readSegment(ctx context.Context, sg segment, off, length int64, w io.Writer) error {
	var opts minio.GetObjectOptions
	if err := opts.SetMatchETag(sg.etag); err != nil {
		return err
	}
	if off != 0 || length != sg.size {
		if err := opts.SetRange(off, off+length-1); err != nil {
			return err
		}
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, sg.key, opts)
	if err != nil {
		return fmt.Errorf("read %s: %w", sg.key, err)
	}
	defer body.Close()
	n, err := io.Copy(w, body)
	if err == nil && n != length {
		err = fmt.Errorf("read %d bytes, want %d", n, length)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", sg.key, err)
	}
	return nil
}

// assemble writes u's data at key and returns its modification time. One data
// object is copied server-side in one request; more are assembled as a
// multipart upload at key: a run of data objects of at least 5 MiB is copied
// server-side (UploadPartCopy), smaller ones are read and merged into parts
// of at least 5 MiB, since S3 refuses smaller parts except the last. Nothing
// is visible at key until the final request succeeds.
func (s *Store) assemble(ctx context.Context, u upload, key string) (time.Time, error) {
	switch {
	case u.size == 0:
		info, err := s.putBytes(ctx, key, nil, minio.PutObjectOptions{})
		return modTime(info.LastModified), err
	case len(u.segs) == 1 && u.size <= maxPartSize:
		sg := u.segs[0]
		// Core.CopyObject sends no header of CopySrcOptions but the source:
		// the ETag condition goes in as a header of its own.
		oi, err := retryCreate(ctx, func() (minio.ObjectInfo, error) {
			return s.core.CopyObject(ctx, s.bucket, sg.key, s.bucket, key,
				map[string]string{"x-amz-copy-source-if-match": sg.etag},
				minio.CopySrcOptions{Bucket: s.bucket, Object: sg.key},
				minio.PutObjectOptions{})
		})
		return modTime(oi.LastModified), err
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{})
	if err != nil {
		return time.Time{}, err
	}
	completed := false
	defer func() {
		if !completed {
			_ = s.core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, key, uploadID)
		}
	}()
	a := assembler{s: s, ctx: ctx, key: key, uploadID: uploadID}
	bp := s.buffers.get()
	defer s.buffers.put(bp)
	a.buf.b = (*bp)[:0]
	for _, sg := range u.segs {
		if err := a.add(sg); err != nil {
			return time.Time{}, err
		}
	}
	if err := a.flush(); err != nil {
		return time.Time{}, err
	}
	info, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, a.parts, minio.PutObjectOptions{})
	if err != nil {
		return time.Time{}, err
	}
	completed = true
	return modTime(info.LastModified), nil
}

// assembler builds the parts of a multipart upload from data objects.
type assembler struct {
	s             *Store
	ctx           context.Context
	key, uploadID string
	buf           fixedBuffer // bytes read, not yet sent; cap is the part size
	parts         []minio.CompletePart
}

func (a *assembler) add(sg segment) error {
	for off := int64(0); off < sg.size; {
		rest := sg.size - off
		if len(a.buf.b) == 0 && rest >= minPartSize {
			if err := a.copyRange(sg, off, rest); err != nil {
				return err
			}
			off += rest
			continue
		}
		n := min(rest, int64(cap(a.buf.b)-len(a.buf.b)))
		if err := a.s.readSegment(a.ctx, sg, off, n, &a.buf); err != nil {
			return err
		}
		off += n
		if len(a.buf.b) >= minPartSize {
			if err := a.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyRange copies length bytes (at least 5 MiB) of sg from off as parts of
// at most 1 GiB and at least 5 MiB.
func (a *assembler) copyRange(sg segment, off, length int64) error {
	const most = 1 << 30
	n := (length + most - 1) / most
	each := length / n
	for i := int64(0); i < n; i++ {
		l := each
		if i == n-1 {
			l = length - each*(n-1)
		}
		num := len(a.parts) + 1
		if num > maxParts {
			return berth.Errorf(berth.CodeTooLarge, "the upload is assembled from more than %d parts", maxParts).
				WithHint("upload the blob in fewer, larger chunks")
		}
		p, err := a.s.core.CopyObjectPart(a.ctx, a.s.bucket, sg.key, a.s.bucket, a.key, a.uploadID, num, off, l,
			map[string]string{"x-amz-copy-source-if-match": sg.etag})
		if err != nil {
			return fmt.Errorf("copy part %d from %s: %w", num, sg.key, err)
		}
		a.parts = append(a.parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		off += l
	}
	return nil
}

// flush sends the buffered bytes as the next part.
func (a *assembler) flush() error {
	if len(a.buf.b) == 0 {
		return nil
	}
	num := len(a.parts) + 1
	if num > maxParts {
		return berth.Errorf(berth.CodeTooLarge, "the upload is assembled from more than %d parts", maxParts).
			WithHint("upload the blob in fewer, larger chunks")
	}
	p, err := a.s.core.PutObjectPart(a.ctx, a.s.bucket, a.key, a.uploadID, num, bytes.NewReader(a.buf.b), int64(len(a.buf.b)), minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("upload part %d: %w", num, err)
	}
	a.parts = append(a.parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
	a.buf.b = a.buf.b[:0]
	return nil
}

// fixedBuffer collects bytes in a slice it never grows, so that the pooled
// part buffer stays the one in use.
type fixedBuffer struct{ b []byte }

func (f *fixedBuffer) Write(p []byte) (int, error) {
	if len(f.b)+len(p) > cap(f.b) {
		return 0, errors.New("part buffer overflow")
	}
	f.b = append(f.b, p...)
	return len(p), nil
}

// modTime is t, or now when the service did not say (a PUT's response
// carries no modification time).
func modTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

// DeleteUpload removes the upload: its marker first, so that it is gone at
// once, then its data and states. Deleting an absent upload is not an error;
// an invalid id is blob_upload_unknown.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if !berth.ValidUploadID(id) {
		return berth.UploadUnknown(id)
	}
	u, err := s.loadUpload(ctx, id)
	if err == nil {
		s.states.forget(u)
		err = s.removeUpload(ctx, u)
	}
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// removeUpload deletes the marker, then the other objects. Once the marker
// is gone the upload is unknown; what a failure leaves after that is debris
// that CleanTemp removes.
func (s *Store) removeUpload(ctx context.Context, u upload) error {
	marker := s.uploadPrefix(u.id) + markerName
	if u.exists {
		if err := s.client.RemoveObject(ctx, s.bucket, marker, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			return err
		}
		// A commit running since u was listed may be making its data a
		// blob's bytes: listed again now that the marker is gone, its kept
		// marker shows (point writes it before it checks the marker).
		fresh, err := s.loadUpload(ctx, u.id)
		if err != nil {
			return nil // the upload is gone; what is left, CleanTemp removes
		}
		u = fresh
	}
	// With a kept marker, a commit may be writing a pointer to the data
	// now, after this delete listed the blob's key: the data and the kept
	// markers stay, and CleanTemp removes them once the upload is old and
	// no pointer names them.
	keep := map[string]bool{marker: true}
	if len(u.kept) > 0 {
		for _, sg := range u.segs {
			keep[sg.key] = true
		}
		for _, k := range u.kept {
			keep[k.key] = true
		}
	}
	var rest []string
	for _, k := range s.disposable(ctx, u) {
		if !keep[k] {
			rest = append(rest, k)
		}
	}
	_ = s.removeKeys(ctx, rest)
	return nil
}

// removeKeys deletes keys in batches.
func (s *Store) removeKeys(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && !isNotFound(e.Err) {
			errs = append(errs, fmt.Errorf("remove %s: %w", e.ObjectName, e.Err))
		}
	}
	return errors.Join(errs...)
}

// WalkUploads lists uploads/ once and calls fn for every upload whose marker
// exists; an error from fn stops the walk and is returned.
func (s *Store) WalkUploads(ctx context.Context, fn func(berth.UploadInfo) error) error {
	groups, err := s.listUploads(ctx)
	if err != nil {
		return fmt.Errorf("walk uploads: %w", err)
	}
	for _, u := range groups {
		if !u.exists {
			continue
		}
		if err := fn(berth.UploadInfo{ID: u.id, Size: u.size, ModTime: u.modTime}); err != nil {
			return err
		}
	}
	return nil
}

// listUploads reads every upload, marker or not, in one listing.
func (s *Store) listUploads(ctx context.Context) ([]upload, error) {
	base := s.uploadsPrefix()
	byID := map[string][]minio.ObjectInfo{}
	var ids []string
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(o.Key, base), "/")
		if !ok || !berth.ValidUploadID(id) {
			continue
		}
		if _, seen := byID[id]; !seen {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], o)
	}
	us := make([]upload, 0, len(ids))
	for _, id := range ids {
		us = append(us, parseUpload(id, s.uploadPrefix(id), byID[id]))
	}
	return us, nil
}

// The sha256 state object uploads/ID/sha256/END holds a magic, END, the ETag
// of the data object that ends at END, a CRC-32 of the marshaled state, and
// the state. A state is used only when all of them match the listing: it then
// describes exactly the chain of data objects up to END, since data objects
// are never replaced and each append saves a state only after its data
// object was created, continuing a state that matched in the same way.
var stateMagic = []byte("bss1")

func (s *Store) saveState(ctx context.Context, id string, end int64, etag string, h hash.Hash) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b := append([]byte(nil), stateMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	b = binary.BigEndian.AppendUint16(b, uint16(len(etag)))
	b = append(b, etag...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(state))
	b = append(b, state...)
	key := s.uploadPrefix(id) + stateDir + offsetName(end)
	_, err = s.putBytes(ctx, key, b, minio.PutObjectOptions{})
	return err
}

// stateFree is the longest upload that saves no sha256 state: a commit (or
// the next append) on another replica than the one that wrote it reads data
// this short in one GET, as it would read the state (the writer remembers
// the state, stateMemo), and an object fewer is one file and folder fewer for a service such
// as versitygw's posix backend to create and remove, per blob of a small
// image. The saved marker, data and blob objects are unchanged.
const stateFree = smallWrite

// hashData returns the sha256 state after all of u's data, read from its
// data objects, or nil when one cannot be read.
func (s *Store) hashData(ctx context.Context, u upload) hash.Hash {
	h := sha256.New()
	if s.hashSegments(ctx, u, h) != nil {
		return nil
	}
	return h
}

// loadState returns the sha256 state after the first end bytes of u when
// this Store remembers it (stateMemo) or one was saved, and it matches u's
// data object ending at end; else nil.
func (s *Store) loadState(ctx context.Context, u upload, end int64) hash.Hash {
	if end == 0 {
		return sha256.New()
	}
	var last segment // the data object ending at end
	for _, sg := range u.segs {
		if sg.start+sg.size == end {
			last = sg
		}
	}
	if last.etag == "" {
		return nil
	}
	if h := s.states.recall(last.key, last.etag); h != nil {
		return h
	}
	key, ok := u.states[end]
	if !ok {
		return nil
	}
	etag := last.etag
	body, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 1024))
	if err != nil || len(b) < 4+8+2 || !bytes.Equal(b[:4], stateMagic) {
		return nil
	}
	if int64(binary.BigEndian.Uint64(b[4:12])) != end {
		return nil
	}
	el := int(binary.BigEndian.Uint16(b[12:14]))
	b = b[14:]
	if len(b) < el+4 || string(b[:el]) != etag {
		return nil
	}
	crc, state := binary.BigEndian.Uint32(b[el:el+4]), b[el+4:]
	if crc32.ChecksumIEEE(state) != crc {
		return nil
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil
	}
	return h
}
