package berth

import (
	"context"
	"fmt"
	"time"
)

// DefaultGCGrace is how long unreferenced content is kept before garbage
// collection removes it: long enough for any push in progress to finish.
const DefaultGCGrace = 24 * time.Hour

// GC removes what no manifest needs: blob links that no manifest of their
// repository references, blob bytes that no repository links, and abandoned
// uploads, each only once it is older than the grace period. It runs while the
// registry serves: every deletion is re-checked at the moment it happens, so a
// push that races it wins.
type GC struct {
	Meta interface {
		GCStore
		BlobLinkStore
		UploadSessionStore
	}
	Blobs   BlobStore
	Uploads UploadStore
	// Lock, when set, holds a blob's digest exclusively while GC re-checks
	// and deletes the blob; the registry holds the digest shared while it
	// turns an upload into a linked blob. Every process writing the blob store
	// must lock through lockers that exclude each other (see CommitLocker).
	Lock CommitLocker
	// Grace is DefaultGCGrace when zero. The blob store's temporary files are
	// kept at least DefaultGCGrace, whatever Grace is.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// Progress, when set, is called after each item examined.
	Progress func(GCProgress)
}

// GCProgress tells how far a collection has come.
type GCProgress struct {
	Phase   string // "links", "blobs" or "uploads"
	Done    int
	Total   int
	Removed int
}

// GCReport lists what a collection removed (or, in a dry run, would remove).
type GCReport struct {
	Links       []BlobLink
	Blobs       []BlobInfo
	Uploads     []UploadInfo
	BlobBytes   int64
	UploadBytes int64
}

// minTempAge is the least age of a temporary file that garbage collection
// removes, whatever its grace period: such a file may belong to a write in
// progress.
const minTempAge = DefaultGCGrace

// TempCleaner is an optional power of a blob store that keeps temporary files:
// it removes those last modified before the given time.
type TempCleaner interface {
	CleanTemp(olderThan time.Time) error
}

// Run collects garbage as of now.
func (g *GC) Run(ctx context.Context, now time.Time) (GCReport, error) {
	grace := g.Grace
	if grace == 0 {
		grace = DefaultGCGrace
	}
	if grace < 0 {
		return GCReport{}, Errorf(CodeInvalid, "the garbage collection grace period %s is negative", grace)
	}
	cutoff := now.Add(-grace)
	var rep GCReport
	unlinked, err := g.collectLinks(ctx, cutoff, &rep)
	if err != nil {
		return rep, err
	}
	if err := g.collectBlobs(ctx, cutoff, unlinked, &rep); err != nil {
		return rep, err
	}
	if err := g.collectUploads(ctx, cutoff, &rep); err != nil {
		return rep, err
	}
	if tc, ok := g.Blobs.(TempCleaner); ok && !g.DryRun {
		// A temporary file may be a blob still being written; nothing records
		// it, so nothing can re-check it. Only age tells, and a short grace
		// would remove the file under a write in progress.
		if err := tc.CleanTemp(now.Add(-max(grace, minTempAge))); err != nil {
			return rep, fmt.Errorf("clean temporary files: %w", err)
		}
	}
	return rep, nil
}

// collectLinks removes links no manifest of their repository references. It
// returns, per digest, the repositories it unlinked (or would unlink).
func (g *GC) collectLinks(ctx context.Context, cutoff time.Time, rep *GCReport) (map[Digest]map[string]bool, error) {
	links, err := g.Meta.FindUnreferencedBlobLinks(ctx, cutoff)
	if err != nil {
		return nil, fmt.Errorf("find unreferenced blob links: %w", err)
	}
	unlinked := map[Digest]map[string]bool{}
	for i, l := range links {
		removed := g.DryRun
		if !g.DryRun {
			if removed, err = g.Meta.DeleteBlobLinkIfUnreferenced(ctx, l.Repository, l.Digest, cutoff); err != nil {
				return nil, fmt.Errorf("delete blob link %s@%s: %w", l.Repository, l.Digest, err)
			}
		}
		if removed {
			rep.Links = append(rep.Links, l)
			if unlinked[l.Digest] == nil {
				unlinked[l.Digest] = map[string]bool{}
			}
			unlinked[l.Digest][l.Repository] = true
		}
		g.progress("links", i+1, len(links), len(rep.Links))
	}
	return unlinked, nil
}

// collectBlobs removes blob bytes older than cutoff that nothing uses.
func (g *GC) collectBlobs(ctx context.Context, cutoff time.Time, unlinked map[Digest]map[string]bool, rep *GCReport) error {
	var old []BlobInfo
	err := g.Blobs.Walk(ctx, func(b BlobInfo) error {
		if b.ModTime.Before(cutoff) {
			old = append(old, b)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for i, b := range old {
		var removed bool
		if g.DryRun {
			removed, err = g.unusedAfterDryRun(ctx, b.Digest, unlinked[b.Digest])
		} else {
			removed, err = g.deleteBlobIfUnused(ctx, b.Digest, cutoff)
		}
		if err != nil {
			return err
		}
		if removed {
			rep.Blobs = append(rep.Blobs, b)
			rep.BlobBytes += b.Size
		}
		g.progress("blobs", i+1, len(old), len(rep.Blobs))
	}
	return nil
}

// deleteBlobIfUnused re-checks under the lock that d is unused and still old,
// then deletes it.
func (g *GC) deleteBlobIfUnused(ctx context.Context, d Digest, cutoff time.Time) (bool, error) {
	if g.Lock != nil {
		unlock, err := g.Lock.Lock(ctx, d)
		if err != nil {
			return false, fmt.Errorf("lock blob %s: %w", d, err)
		}
		defer unlock()
	}
	inUse, err := g.Meta.BlobInUse(ctx, d)
	if err != nil {
		return false, fmt.Errorf("check blob %s: %w", d, err)
	}
	if inUse {
		return false, nil
	}
	info, err := g.Blobs.Stat(ctx, d)
	if IsCode(err, CodeBlobUnknown) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	if !info.ModTime.Before(cutoff) {
		return false, nil // written again since the walk
	}
	if err := g.Blobs.Delete(ctx, d); err != nil {
		return false, fmt.Errorf("delete blob %s: %w", d, err)
	}
	return true, nil
}

// unusedAfterDryRun tells whether d would be unused once the links a dry run
// would remove were gone.
func (g *GC) unusedAfterDryRun(ctx context.Context, d Digest, unlinked map[string]bool) (bool, error) {
	inUse, err := g.Meta.BlobInUse(ctx, d)
	if err != nil || !inUse {
		return !inUse, err
	}
	if len(unlinked) == 0 {
		return false, nil
	}
	repos, err := g.Meta.FindBlobRepositories(ctx, d)
	if err != nil {
		return false, err
	}
	for _, r := range repos {
		if !unlinked[r] {
			return false, nil
		}
	}
	return true, nil
}

// collectUploads removes uploads untouched since cutoff, and sessions whose
// bytes are gone.
func (g *GC) collectUploads(ctx context.Context, cutoff time.Time, rep *GCReport) error {
	var stale []UploadInfo
	if err := g.Uploads.WalkUploads(ctx, func(u UploadInfo) error {
		if u.ModTime.Before(cutoff) {
			stale = append(stale, u)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("walk uploads: %w", err)
	}
	for i, u := range stale {
		removed := g.DryRun
		if !g.DryRun {
			var err error
			if u, removed, err = g.deleteUploadIfStale(ctx, u.ID, cutoff); err != nil {
				return err
			}
		}
		if removed {
			rep.Uploads = append(rep.Uploads, u)
			rep.UploadBytes += u.Size
		}
		g.progress("uploads", i+1, len(stale), len(rep.Uploads))
	}
	sessions, err := g.Meta.FindUploadSessions(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("find upload sessions: %w", err)
	}
	for _, s := range sessions {
		if _, err := g.Uploads.StatUpload(ctx, s.ID); !IsCode(err, CodeBlobUploadUnknown) {
			if err != nil {
				return fmt.Errorf("stat upload %s: %w", s.ID, err)
			}
			continue
		}
		if !g.DryRun {
			if err := g.Meta.DeleteUploadSession(ctx, s.ID); err != nil {
				return fmt.Errorf("delete upload session %s: %w", s.ID, err)
			}
		}
	}
	return nil
}

// deleteUploadIfStale re-checks that upload id is still untouched since cutoff,
// then deletes its bytes and its session. It returns the upload as deleted.
func (g *GC) deleteUploadIfStale(ctx context.Context, id string, cutoff time.Time) (UploadInfo, bool, error) {
	u, err := g.Uploads.StatUpload(ctx, id)
	if IsCode(err, CodeBlobUploadUnknown) {
		return UploadInfo{}, false, nil // finished or cancelled since the walk
	} else if err != nil {
		return UploadInfo{}, false, fmt.Errorf("stat upload %s: %w", id, err)
	}
	if !u.ModTime.Before(cutoff) {
		return UploadInfo{}, false, nil // resumed since the walk
	}
	if err := g.Uploads.DeleteUpload(ctx, id); err != nil {
		return UploadInfo{}, false, fmt.Errorf("delete upload %s: %w", id, err)
	}
	if err := g.Meta.DeleteUploadSession(ctx, id); err != nil {
		return UploadInfo{}, false, fmt.Errorf("delete upload session %s: %w", id, err)
	}
	return u, true, nil
}

func (g *GC) progress(phase string, done, total, removed int) {
	if g.Progress != nil {
		g.Progress(GCProgress{Phase: phase, Done: done, Total: total, Removed: removed})
	}
}
