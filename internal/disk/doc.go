// Package disk stores blob bytes and unfinished uploads in a local directory. It is
// berth's default blob backend: one process owns the directory.
//
// Layout under the root:
//
//	blobs/ALG/XX/HEX   a blob, named by its digest (XX is the first two hex digits)
//	uploads/ID/data    an unfinished upload's bytes
//	uploads/ID/sha256  the sha256 hash state after those bytes, so a commit need
//	                   not read them again (from 4 MiB; below that the state is
//	                   kept in memory, and hashed again after a restart)
//	tmp/               files being written, renamed into place when complete
//
// Contract: a blob becomes visible only by renaming a complete, fsynced file into
// place and fsyncing its directory, so a crash (kill -9, power loss) leaves either
// the whole blob or none; every byte is hashed while it is written, so content is
// never read twice for a Put, nor for a sha256 commit. All state that matters is on
// disk: a new Store on the same root continues any upload. An upload is no promise
// until it is committed, so a power loss may take away one not committed yet (its
// directory is not synced when it is made): the client starts it again.
//
// It must never: expose a partial or unverified blob under a digest; build a path
// from an unvalidated digest or upload id; decide by an error's message text (a
// missing file is recognised with errors.Is(err, fs.ErrNotExist) and becomes
// blob_unknown or blob_upload_unknown); or know about repositories, which are the
// metadata store's business.
//
// Put writes past the page cache (direct I/O) where the file system allows, but for
// a blob's unaligned last piece; uploads go through the page cache.
package disk
