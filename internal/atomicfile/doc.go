// Package atomicfile writes small files so that a crash leaves the old
// content or the new, never a part: berth's state files (signing keys, the
// secret pepper, stored logins, caches) and the blob store's directories.
//
// It holds no policy about what is written or where, and must never write a
// file in place.
package atomicfile
