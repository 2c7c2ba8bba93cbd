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
// Order keeps every crash safe. A commit writes the kept marker, checks that
// the upload's marker is still there, writes the pointer (only if nothing is
// at the blob's key), then removes the upload's marker and hash states: from
// the pointer's creation on, the data is reachable and is never removed
// while the pointer names it (disposable asks). Delete removes the pointer,
// then the data and the kept marker; a crash between leaves an upload that
// CleanTemp removes once it finds no pointer naming its data.
//
// Races: a DeleteUpload removes the upload's marker first and lists the
// upload again after; when that listing shows a kept marker, it leaves the
// data and the kept marker to CleanTemp. A commit checks the upload's marker
// after writing its kept marker and before writing its pointer. So a delete
// that comes after the check sees the kept marker and keeps the data, and a
// delete that comes before it fails the commit before any pointer exists. A
// pointer, once written, is never taken back by its commit: a mount or
// another commit of the same digest that finds it may rely on it.
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
	s.step("kept")
	// The upload must still be there now that its kept marker is (see the
	// order above). A failed commit leaves the kept marker: it may be an
	// earlier commit's, whose pointer names the data, and CleanTemp removes
	// it with the data once no pointer does.
	if _, err := s.client.StatObject(ctx, s.bucket, s.uploadPrefix(u.id)+markerName, minio.StatObjectOptions{}); err != nil {
		if isNotFound(err) {
			return time.Time{}, berth.UploadUnknown(u.id)
		}
		return time.Time{}, fmt.Errorf("stat upload marker of %s: %w", u.id, err)
	}
	s.step("checked")
	opts := minio.PutObjectOptions{UserMetadata: map[string]string{
		"Berth-Data": strings.TrimPrefix(sg.key, s.prefix),
		"Berth-Etag": sg.etag,
		"Berth-Size": strconv.FormatInt(sg.size, 10),
	}}
	opts.SetMatchETagExcept("*")
	info, err := s.putBytes(ctx, s.blobKey(d), nil, opts)
	mod := modTime(info.LastModified)
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
			mod = modTime(info.LastModified)
		}
	} else if err != nil {
		return time.Time{}, fmt.Errorf("write pointer %s: %w", s.blobKey(d), err)
	}
	s.step("pointed")
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
