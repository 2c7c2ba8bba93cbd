// Package s3 stores blob bytes and unfinished uploads in a bucket of any
// S3-compatible object store (AWS S3, MinIO, Ceph, versitygw…), so that several
// berth replicas can share them. Select it with
// s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R (see ParseURL); credentials
// come from CredentialsFromEnv or the configuration file, never from the URL.
//
// Layout under the prefix:
//
//	blobs/ALG/XX/HEX          a blob, named by its digest (XX: first two hex digits),
//	                          or an empty pointer to the data object holding its bytes
//	uploads/ID/upload         an empty marker: the upload exists
//	uploads/ID/data/START     the bytes one append wrote at offset START (20 digits)
//	uploads/ID/sha256/END     the sha256 hash state after the first END bytes
//	uploads/ID/blob/ALG.HEX   an empty marker: this committed upload's one data
//	                          object is that blob's bytes (see pointer.go)
//
// Contract: every upload's state is in the bucket, so an upload begun through one
// Store continues through any other on the same bucket and prefix. Data and
// marker objects are created with If-None-Match: *, so of two appends at one
// offset exactly one wins, across processes. A blob appears at its key only by
// the last request of a write whose digest (and, for Put, size) was already
// verified: a single PUT, a server-side copy, the completion of a multipart
// upload, or (with Config.Pointers) a pointer to an upload's one data
// object (of at least 16 MiB, which is then not copied); a crash leaves at
// most an incomplete multipart upload, which no reader sees and CleanTemp
// aborts, or an upload no pointer names, which CleanTemp removes. Data a pointer names is never removed
// before the pointer. A commit reads and copies data objects pinned to the
// ETags it listed, so the blob holds exactly the bytes it verified. A create
// that a service keeping objects as files refuses because a concurrent delete
// removed its folder (versitygw's ExistingObjectIsDirectory; S3 has no
// folders) wrote nothing, and is sent again a bounded number of times.
//
// Requests go through serviceTransport: a chunk-signed PUT (plain http)
// closes its connection after the answer, and a request the service could
// not parse (400 naming no S3 error: nothing was done) is sent again when it
// is idempotent and its body, if any, is in memory.
//
// It must never: expose a partial or unverified blob under a digest; build a key
// from an unvalidated digest or upload id; keep upload state in memory between
// calls; read the environment or put credentials in a URL, an error or a log;
// decide by an error's message text (the service's status and error code are
// matched); or know about repositories, which are the metadata store's business.
package s3
