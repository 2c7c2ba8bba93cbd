package s3

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth"
)

// A blob committed from an upload that is one large data object is not
// copied: copying costs the service the blob's whole size again (read,
// written, and hashed for its ETag), which made a commit take as long as
// the push. Its key holds an empty pointer object instead, whose metadata
// names the data object, which stays where the append wrote it, beside a
// kept marker uploads/ID/blob/ALG.HEX that names the blob. Pointers are
// written only with Config.Pointers; they are always followed.
//
// Order keeps every crash safe. A commit writes the kept marker, then the
// pointer (only if nothing is at the blob's key), then removes the upload's
// marker and hash states: from the pointer's creation on, the data is
// reachable and is never removed while the pointer names it (disposable
// asks). Delete removes the pointer, then the data and the kept marker; a
// crash between leaves an upload that CleanTemp removes once it finds no
// pointer naming its data. Races: a DeleteUpload removes the marker first
// and lists the upload again after, and a commit checks the marker once its
// pointer is written, removing a pointer it wrote if the marker is gone; so
// either the delete sees the pointer and keeps the data, or the commit
// fails. The one window left: between a DeleteUpload and that undo, a
// mount or another commit of the same digest may take the pointer for the
// stored blob.
const (
	keptDir = "blob/" // uploads/ID/blob/ALG.HEX: the blob whose bytes this upload's data is

	// pointerMin is the least size of data object a commit points to
	// instead of copying: below it a copy costs little, and a blob at its
	// own key is read in one request rather than two.
	pointerMin = 16 << 20

	// The user metadata of a pointer object: the data object's key (under
	// the prefix), its ETag, and its size.
	metaData = "X-Amz-Meta-Berth-Data"
	metaETag = "X-Amz-Meta-Berth-Etag"
	metaSize = "X-Amz-Meta-Berth-Size"
)

// pointer is where a pointed blob's bytes are.
type pointer struct {
	key, etag string // the data object's full key, and its ETag
	size      int64
}

// kept is a kept marker of an upload: its data is d's bytes while d's
// pointer names it.
type kept struct {
	key string
	d   berth.Digest
}

// keptName returns the name of d's kept marker within an upload.
func keptName(d berth.Digest) string { return keptDir + d.Algorithm() + "." + d.Encoded() }

// parseKept parses ALG.HEX, the rest of a kept marker's name.
func parseKept(s string) (berth.Digest, bool) {
	alg, enc, ok := strings.Cut(s, ".")
	if !ok {
		return "", false
	}
	d, err := berth.ParseDigest(alg + ":" + enc)
	return d, err == nil
}

// pointerOf tells whether oi, read at a blob's key, is a pointer, and where
// it points. A pointer is empty and names a data object of an upload under
// the store's prefix; anything else is the blob's own bytes.
func (s *Store) pointerOf(oi minio.ObjectInfo) (pointer, bool) {
	if oi.Size != 0 || oi.Metadata == nil {
		return pointer{}, false
	}
	rel := oi.Metadata.Get(metaData)
	size, err := strconv.ParseInt(oi.Metadata.Get(metaSize), 10, 64)
	if rel == "" || err != nil || size <= 0 || !strings.HasPrefix(rel, "uploads/") || strings.Contains(rel, "..") {
		return pointer{}, false
	}
	return pointer{key: s.prefix + rel, etag: oi.Metadata.Get(metaETag), size: size}, true
}

// pointable returns u's one data object when a commit should point to it.
func (s *Store) pointable(u upload) (segment, bool) {
	if s.pointerMin <= 0 || len(u.segs) != 1 || u.size < s.pointerMin {
		return segment{}, false
	}
	return u.segs[0], true
}

// point makes d, whose digest u's data was verified against, a pointer to
// u's one data object sg, then removes the rest of u. When d's key already
// holds the blob (bytes, or a pointer to data that is there), u is removed
// whole and the stored blob is kept.
func (s *Store) point(ctx context.Context, u upload, sg segment, d berth.Digest) (time.Time, error) {
	keptKey := s.uploadPrefix(u.id) + keptName(d)
	if _, err := s.putBytes(ctx, keptKey, nil, minio.PutObjectOptions{}); err != nil {
		return time.Time{}, fmt.Errorf("write kept marker %s: %w", keptKey, err)
	}
	opts := minio.PutObjectOptions{UserMetadata: map[string]string{
		"Berth-Data": strings.TrimPrefix(sg.key, s.prefix),
		"Berth-Etag": sg.etag,
		"Berth-Size": strconv.FormatInt(sg.size, 10),
	}}
	opts.SetMatchETagExcept("*")
	info, err := s.putBytes(ctx, s.blobKey(d), nil, opts)
	mod := modTime(info.LastModified)
	created := err == nil // this call wrote the pointer, so it may undo it
	if isPreconditionFailed(err) {
		// Something is at d's key: this upload's own pointer (a commit
		// that stopped after writing it, sent again), or the blob stored by
		// another write. A pointer whose data is gone is replaced.
		oi, serr := s.client.StatObject(ctx, s.bucket, s.blobKey(d), minio.StatObjectOptions{})
		if serr != nil {
			return time.Time{}, fmt.Errorf("stat %s: %w", s.blobKey(d), serr)
		}
		p, isPointer := s.pointerOf(oi)
		switch {
		case isPointer && p.key == sg.key:
			mod = oi.LastModified
		case !isPointer || s.pointedExists(ctx, p):
			_ = s.removeKeys(ctx, append(s.disposable(ctx, u), keptKey))
			return oi.LastModified, nil
		default:
			opts = minio.PutObjectOptions{UserMetadata: opts.UserMetadata}
			if info, err = s.putBytes(ctx, s.blobKey(d), nil, opts); err != nil {
				return time.Time{}, fmt.Errorf("replace pointer %s: %w", s.blobKey(d), err)
			}
			mod, created = modTime(info.LastModified), true
		}
	} else if err != nil {
		return time.Time{}, fmt.Errorf("write pointer %s: %w", s.blobKey(d), err)
	}
	// A DeleteUpload may have run since u was listed: it removes the
	// marker first, then what it lists. If the marker is gone (or this
	// cannot tell), that delete may not have seen the pointer, so a pointer
	// this call wrote is removed again and the commit fails: the upload is
	// gone, as it would be had the delete come first. A pointer this call
	// found is another commit of the upload's, which makes the same check:
	// it is left to that commit, and this one fails (the upload was
	// committed, or deleted, meanwhile).
	keep := context.WithoutCancel(ctx) // an undo must not stop halfway with the request
	if _, err := s.client.StatObject(keep, s.bucket, s.uploadPrefix(u.id)+markerName, minio.StatObjectOptions{}); err != nil {
		if created {
			s.unpoint(keep, d, sg.key)
		}
		if isNotFound(err) {
			return time.Time{}, berth.UploadUnknown(u.id)
		}
		return time.Time{}, fmt.Errorf("stat upload marker of %s: %w", u.id, err)
	}
	var rest []string
	for _, k := range s.disposable(ctx, u) {
		if k != sg.key && k != keptKey {
			rest = append(rest, k)
		}
	}
	// Best effort, as after a copy: what is left is a marker that lets the
	// commit be sent again, or states, which disposable leaves the data of.
	_ = s.removeKeys(ctx, rest)
	return mod, nil
}

// unpoint removes d's pointer if it names data (best effort: what is left
// is an upload that CleanTemp removes, or a pointer whose data a next
// commit of d replaces).
func (s *Store) unpoint(ctx context.Context, d berth.Digest, data string) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.blobKey(d), minio.StatObjectOptions{})
	if err != nil {
		return
	}
	if p, ok := s.pointerOf(oi); ok && p.key == data {
		_ = s.client.RemoveObject(ctx, s.bucket, s.blobKey(d), minio.RemoveObjectOptions{})
	}
}

// removePointed removes, once d's pointer p is gone, the data p named and
// d's kept marker, unless another pointer names the same data (one upload
// committed under two digests at once) or the upload's marker is there.
func (s *Store) removePointed(ctx context.Context, p pointer, d berth.Digest) {
	id, _, _ := strings.Cut(strings.TrimPrefix(p.key, s.uploadsPrefix()), "/")
	u, err := s.loadUpload(ctx, id)
	if err != nil || u.exists {
		// What is left, CleanTemp removes; an upload whose marker is still
		// there (a commit's removal that failed) may be committed again,
		// so its data goes only with the upload.
		return
	}
	ours := map[string]bool{p.key: true, s.uploadPrefix(id) + keptName(d): true}
	var rm []string
	for _, k := range s.disposable(ctx, u) {
		if ours[k] {
			rm = append(rm, k)
		}
	}
	_ = s.removeKeys(ctx, rm)
}

// pointedExists tells whether p's data object is there (any doubt: yes).
func (s *Store) pointedExists(ctx context.Context, p pointer) bool {
	_, err := s.client.StatObject(ctx, s.bucket, p.key, minio.StatObjectOptions{})
	return !isNotFound(err)
}

// disposable returns the keys of u that may be removed: all of them but the
// data objects a pointer names, with their kept markers. It asks the blob's
// key of each kept marker; when it cannot tell, it keeps them.
func (s *Store) disposable(ctx context.Context, u upload) []string {
	if len(u.kept) == 0 {
		return u.keys
	}
	keep := map[string]bool{}
	for _, k := range u.kept {
		oi, err := s.client.StatObject(ctx, s.bucket, s.blobKey(k.d), minio.StatObjectOptions{})
		if isNotFound(err) {
			continue
		}
		p, isPointer := s.pointerOf(oi)
		if err != nil || (isPointer && strings.HasPrefix(p.key, s.uploadPrefix(u.id))) {
			keep[k.key] = true
			if err == nil {
				keep[p.key] = true
			} else {
				for _, sg := range u.segs {
					keep[sg.key] = true
				}
			}
		}
	}
	var rest []string
	for _, k := range u.keys {
		if !keep[k] {
			rest = append(rest, k)
		}
	}
	return rest
}

// openPointed opens the data object p names, pinned to its ETag, as d's
// content.
func (s *Store) openPointed(ctx context.Context, d berth.Digest, p pointer, mod time.Time) (io.ReadSeekCloser, berth.BlobInfo, error) {
	obj, _, err := s.getObject(ctx, p.key, p.etag)
	if err != nil {
		return nil, berth.BlobInfo{}, fmt.Errorf("open blob %s at %s: %w", d, strings.TrimPrefix(p.key, s.prefix), err)
	}
	return obj, berth.BlobInfo{Digest: d, Size: p.size, ModTime: mod}, nil
}

// statBlob reads d's key: the blob's size and time, and its pointer if it
// is one.
func (s *Store) statBlob(ctx context.Context, d berth.Digest) (berth.BlobInfo, pointer, bool, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.blobKey(d), minio.StatObjectOptions{})
	if isNotFound(err) {
		return berth.BlobInfo{}, pointer{}, false, blobUnknown(d)
	}
	if err != nil {
		return berth.BlobInfo{}, pointer{}, false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	info := berth.BlobInfo{Digest: d, Size: oi.Size, ModTime: oi.LastModified}
	p, isPointer := s.pointerOf(oi)
	if isPointer {
		info.Size = p.size
	}
	return info, p, isPointer, nil
}

// mayBePointer tells, from a listing, whether the object at d's key could be
// a pointer: it is empty and d is not the digest of nothing.
func mayBePointer(d berth.Digest, size int64) bool {
	return size == 0 && d != berth.DigestOf(d.Algorithm(), nil)
}
