package berth_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/sqlite"
)

// These tests collect garbage in real stores: SQLite metadata and a disk blob
// store in t.TempDir(). Time is injected: GC.Run takes now, links and sessions
// carry the Created times chosen here, and the disk store, which has no clock
// of its own, gets its files' modification times set with os.Chtimes.

const testGrace = time.Hour

type gcEnv struct {
	t     *testing.T
	ctx   context.Context
	meta  *sqlite.DB
	store *disk.Store
	// lock is the registry's commit lock: a digest is held shared while its
	// blob is put and linked, exclusively by GC while it deletes the blob.
	lock *berth.LocalCommitLocker
	// now is when the collections run; old is well past the grace period and
	// young well within it.
	now, old, young time.Time
}

func newGCEnv(t *testing.T) *gcEnv {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := meta.Close(); err != nil {
			t.Error(err)
		}
	})
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	// Whole seconds: SQLite keeps microseconds, file systems nanoseconds.
	now := time.Now().Truncate(time.Second)
	return &gcEnv{
		t: t, ctx: t.Context(), meta: meta, store: store, lock: &berth.LocalCommitLocker{},
		now: now, old: now.Add(-2 * testGrace), young: now.Add(-testGrace / 60),
	}
}

// shared holds d as the registry does while it commits a blob of digest d.
func (e *gcEnv) shared(d berth.Digest) (unlock func()) {
	e.t.Helper()
	unlock, err := e.lock.LockShared(e.ctx, d)
	if err != nil {
		e.t.Error(err) // from pushing goroutines too: not Fatal
		return func() {}
	}
	return unlock
}

func (e *gcEnv) gc() *berth.GC {
	return &berth.GC{Meta: e.meta, Blobs: e.store, Uploads: e.store, Lock: e.lock, Grace: testGrace}
}

func (e *gcEnv) run(g *berth.GC) berth.GCReport {
	e.t.Helper()
	rep, err := g.Run(e.ctx, e.now)
	if err != nil {
		e.t.Fatalf("GC.Run: %v", err)
	}
	return rep
}

// blob stores content as a blob last modified at modTime.
func (e *gcEnv) blob(content string, modTime time.Time) berth.BlobInfo {
	e.t.Helper()
	d := berth.DigestOf("", []byte(content))
	if _, err := e.store.Put(e.ctx, d, int64(len(content)), strings.NewReader(content)); err != nil {
		e.t.Fatal(err)
	}
	e.setModTime(d.Encoded(), modTime)
	info, err := e.store.Stat(e.ctx, d)
	if err != nil {
		e.t.Fatal(err)
	}
	if !info.ModTime.Equal(modTime) {
		e.t.Fatalf("blob %s: ModTime %v after setting %v", d.Short(), info.ModTime, modTime)
	}
	return info
}

// setModTime sets the modification time of the one entry named name under the
// disk store's root: a file, or a directory and every file in it.
func (e *gcEnv) setModTime(name string, t time.Time) {
	e.t.Helper()
	var found []string
	err := filepath.WalkDir(e.store.Root(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != name {
			return err
		}
		found = append(found, path)
		return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(p, t, t)
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(found) != 1 {
		e.t.Fatalf("%d entries named %s under %s: %v", len(found), name, e.store.Root(), found)
	}
}

func (e *gcEnv) link(repo string, b berth.BlobInfo, created time.Time) berth.BlobLink {
	e.t.Helper()
	l := berth.BlobLink{Repository: repo, Digest: b.Digest, Size: b.Size, Created: created}
	if err := e.meta.LinkBlob(e.ctx, l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

// manifest pushes a manifest referencing blobs, each of which must be linked
// in repo already.
func (e *gcEnv) manifest(repo, tag string, blobs ...berth.BlobInfo) *berth.Manifest {
	e.t.Helper()
	m := gcManifest(repo, tag, e.old, blobs...)
	if err := e.meta.PutManifest(e.ctx, m, tag); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func gcManifest(repo, tag string, created time.Time, blobs ...berth.BlobInfo) *berth.Manifest {
	var layers []string
	var refs []berth.Reference
	for _, b := range blobs {
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, b.Digest, b.Size))
		refs = append(refs, berth.Reference{Digest: b.Digest, Kind: berth.ReferenceBlob})
	}
	// The tag in an annotation keeps manifests of equal layers apart.
	content := fmt.Sprintf(`{"schemaVersion":2,"layers":[%s],"annotations":{"tag":%q}}`, strings.Join(layers, ","), repo+":"+tag)
	return &berth.Manifest{
		Repository: repo,
		Digest:     berth.DigestOf("", []byte(content)),
		MediaType:  "application/vnd.oci.image.manifest.v1+json",
		Content:    []byte(content),
		References: refs,
		Created:    created,
	}
}

// upload starts an upload of content in repo whose session was created at
// created and whose bytes were last written at modTime.
func (e *gcEnv) upload(id, repo, content string, created, modTime time.Time) {
	e.t.Helper()
	if err := e.store.CreateUpload(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.AppendUpload(e.ctx, id, 0, strings.NewReader(content)); err != nil {
		e.t.Fatal(err)
	}
	if err := e.meta.CreateUploadSession(e.ctx, berth.UploadSession{ID: id, Repository: repo, Created: created}); err != nil {
		e.t.Fatal(err)
	}
	e.setModTime(id, modTime)
}

func (e *gcEnv) session(id, repo string, created time.Time) {
	e.t.Helper()
	if err := e.meta.CreateUploadSession(e.ctx, berth.UploadSession{ID: id, Repository: repo, Created: created}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *gcEnv) wantBlob(b berth.BlobInfo, stored bool) {
	e.t.Helper()
	_, err := e.store.Stat(e.ctx, b.Digest)
	switch {
	case stored && err != nil:
		e.t.Errorf("blob %s: %v, want it stored", b.Digest.Short(), err)
	case !stored && !berth.IsCode(err, berth.CodeBlobUnknown):
		e.t.Errorf("blob %s: Stat error %v, want blob_unknown", b.Digest.Short(), err)
	}
}

func (e *gcEnv) wantLink(repo string, b berth.BlobInfo, linked bool) {
	e.t.Helper()
	_, err := e.meta.FindBlobLink(e.ctx, repo, b.Digest)
	switch {
	case linked && err != nil:
		e.t.Errorf("link %s@%s: %v, want it kept", repo, b.Digest.Short(), err)
	case !linked && !berth.IsCode(err, berth.CodeBlobUnknown):
		e.t.Errorf("link %s@%s: error %v, want blob_unknown", repo, b.Digest.Short(), err)
	}
}

func (e *gcEnv) wantUpload(id string, kept bool) {
	e.t.Helper()
	_, err := e.store.StatUpload(e.ctx, id)
	switch {
	case kept && err != nil:
		e.t.Errorf("upload %s: %v, want it kept", id, err)
	case !kept && !berth.IsCode(err, berth.CodeBlobUploadUnknown):
		e.t.Errorf("upload %s: error %v, want blob_upload_unknown", id, err)
	}
}

func (e *gcEnv) wantSession(id string, kept bool) {
	e.t.Helper()
	_, err := e.meta.FindUploadSession(e.ctx, id)
	switch {
	case kept && err != nil:
		e.t.Errorf("upload session %s: %v, want it kept", id, err)
	case !kept && !berth.IsCode(err, berth.CodeBlobUploadUnknown):
		e.t.Errorf("upload session %s: error %v, want blob_upload_unknown", id, err)
	}
}

// reported renders a report as sorted lines, sizes and times included, so
// that two reports compare with ==.
func reported(rep berth.GCReport) (links, blobs, uploads []string) {
	for _, l := range rep.Links {
		links = append(links, fmt.Sprintf("%s@%s size=%d created=%d", l.Repository, l.Digest, l.Size, l.Created.UnixNano()))
	}
	for _, b := range rep.Blobs {
		blobs = append(blobs, fmt.Sprintf("%s size=%d mod=%d", b.Digest, b.Size, b.ModTime.UnixNano()))
	}
	for _, u := range rep.Uploads {
		uploads = append(uploads, fmt.Sprintf("%s size=%d mod=%d", u.ID, u.Size, u.ModTime.UnixNano()))
	}
	slices.Sort(links)
	slices.Sort(blobs)
	slices.Sort(uploads)
	return links, blobs, uploads
}

func linkLine(l berth.BlobLink) string {
	return fmt.Sprintf("%s@%s size=%d created=%d", l.Repository, l.Digest, l.Size, l.Created.UnixNano())
}

func blobLine(b berth.BlobInfo) string {
	return fmt.Sprintf("%s size=%d mod=%d", b.Digest, b.Size, b.ModTime.UnixNano())
}

func uploadLine(id string, size int64, mod time.Time) string {
	return fmt.Sprintf("%s size=%d mod=%d", id, size, mod.UnixNano())
}

func wantReported(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s reported:\n\t%s\nwant:\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestGCKeepsReferencedBlobs(t *testing.T) {
	e := newGCEnv(t)
	layer := e.blob("layer", e.old)
	config := e.blob("config", e.old)
	e.link("team/app", layer, e.old)
	e.link("team/app", config, e.old)
	e.manifest("team/app", "v1", layer, config)

	rep := e.run(e.gc())
	links, blobs, uploads := reported(rep)
	wantReported(t, "links", links)
	wantReported(t, "blobs", blobs)
	wantReported(t, "uploads", uploads)
	for _, b := range []berth.BlobInfo{layer, config} {
		e.wantBlob(b, true)
		e.wantLink("team/app", b, true)
	}
}

func TestGCDeletingOneOfTwoManifestsKeepsSharedLayer(t *testing.T) {
	e := newGCEnv(t)
	shared := e.blob("shared base layer", e.old)
	own1 := e.blob("layer of v1", e.old)
	own2 := e.blob("layer of v2", e.old)
	for _, b := range []berth.BlobInfo{shared, own1, own2} {
		e.link("team/app", b, e.old)
	}
	m1 := e.manifest("team/app", "v1", shared, own1)
	e.manifest("team/app", "v2", shared, own2)
	if err := e.meta.DeleteManifest(e.ctx, "team/app", m1.Digest); err != nil {
		t.Fatal(err)
	}

	rep := e.run(e.gc())
	links, blobs, _ := reported(rep)
	wantReported(t, "links", links, linkLine(berth.BlobLink{Repository: "team/app", Digest: own1.Digest, Size: own1.Size, Created: e.old}))
	wantReported(t, "blobs", blobs, blobLine(own1))
	if rep.BlobBytes != own1.Size {
		t.Errorf("BlobBytes = %d, want %d", rep.BlobBytes, own1.Size)
	}
	e.wantBlob(own1, false)
	e.wantLink("team/app", own1, false)
	for _, b := range []berth.BlobInfo{shared, own2} {
		e.wantBlob(b, true)
		e.wantLink("team/app", b, true)
	}
}

func TestGCRemovesUnreferencedLinkThenBytes(t *testing.T) {
	e := newGCEnv(t)
	b := e.blob("pushed, never referenced", e.old)
	l := e.link("team/app", b, e.old)

	rep := e.run(e.gc())
	links, blobs, _ := reported(rep)
	wantReported(t, "links", links, linkLine(l))
	wantReported(t, "blobs", blobs, blobLine(b))
	if rep.BlobBytes != int64(len("pushed, never referenced")) {
		t.Errorf("BlobBytes = %d, want %d", rep.BlobBytes, len("pushed, never referenced"))
	}
	e.wantLink("team/app", b, false)
	e.wantBlob(b, false)

	// Nothing is left to collect.
	rep = e.run(e.gc())
	if len(rep.Links)+len(rep.Blobs)+len(rep.Uploads) != 0 {
		t.Errorf("a second run reported %+v", rep)
	}
}

func TestGCGracePeriod(t *testing.T) {
	e := newGCEnv(t)
	// Just inside and just outside the grace period.
	inside, outside := e.now.Add(-testGrace+time.Second), e.now.Add(-testGrace-time.Second)

	youngBytes := e.blob("young, unlinked", inside)
	oldBytes := e.blob("old, unlinked", outside)
	// A young link keeps its old bytes: a push that is about to send its
	// manifest.
	pushing := e.blob("old bytes, young link", e.old)
	e.link("team/app", pushing, inside)
	// An old link is removed, but its young bytes stay.
	fresh := e.blob("young bytes, old link", e.young)
	freshLink := e.link("team/app", fresh, outside)
	// Exactly at the cutoff is not before it.
	atCutoff := e.blob("at the cutoff", e.now.Add(-testGrace))

	rep := e.run(e.gc())
	links, blobs, _ := reported(rep)
	wantReported(t, "links", links, linkLine(freshLink))
	wantReported(t, "blobs", blobs, blobLine(oldBytes))
	e.wantBlob(youngBytes, true)
	e.wantBlob(oldBytes, false)
	e.wantBlob(pushing, true)
	e.wantLink("team/app", pushing, true)
	e.wantBlob(fresh, true)
	e.wantLink("team/app", fresh, false)
	e.wantBlob(atCutoff, true)
}

func TestGCZeroGraceMeansDefault(t *testing.T) {
	e := newGCEnv(t)
	inside := e.blob("inside the default grace", e.now.Add(-berth.DefaultGCGrace+time.Minute))
	outside := e.blob("outside the default grace", e.now.Add(-berth.DefaultGCGrace-time.Minute))
	g := e.gc()
	g.Grace = 0
	rep := e.run(g)
	_, blobs, _ := reported(rep)
	wantReported(t, "blobs", blobs, blobLine(outside))
	e.wantBlob(inside, true)
	e.wantBlob(outside, false)
}

func TestGCBlobLinkedInTwoRepositories(t *testing.T) {
	t.Run("referenced in one", func(t *testing.T) {
		e := newGCEnv(t)
		b := e.blob("layer", e.old)
		e.link("team/app", b, e.old)
		e.manifest("team/app", "v1", b)
		loose := e.link("team/web", b, e.old)

		rep := e.run(e.gc())
		links, blobs, _ := reported(rep)
		wantReported(t, "links", links, linkLine(loose))
		wantReported(t, "blobs", blobs)
		e.wantLink("team/app", b, true)
		e.wantLink("team/web", b, false)
		e.wantBlob(b, true)
	})
	t.Run("young in one", func(t *testing.T) {
		e := newGCEnv(t)
		b := e.blob("layer", e.old)
		loose := e.link("team/app", b, e.old)
		e.link("team/web", b, e.young)

		rep := e.run(e.gc())
		links, blobs, _ := reported(rep)
		wantReported(t, "links", links, linkLine(loose))
		wantReported(t, "blobs", blobs)
		e.wantLink("team/app", b, false)
		e.wantLink("team/web", b, true)
		e.wantBlob(b, true)
	})
	t.Run("unreferenced in both", func(t *testing.T) {
		e := newGCEnv(t)
		b := e.blob("layer", e.old)
		l1 := e.link("team/app", b, e.old)
		l2 := e.link("team/web", b, e.old)

		rep := e.run(e.gc())
		links, blobs, _ := reported(rep)
		wantReported(t, "links", links, linkLine(l1), linkLine(l2))
		wantReported(t, "blobs", blobs, blobLine(b))
		e.wantBlob(b, false)
	})
}

// TestGCDryRun checks that a dry run removes nothing and reports exactly what
// a real run then removes.
func TestGCDryRun(t *testing.T) {
	e := newGCEnv(t)
	// Kept: referenced, young, or linked young elsewhere.
	used := e.blob("used layer", e.old)
	e.link("team/app", used, e.old)
	e.manifest("team/app", "v1", used)
	young := e.blob("young, unlinked", e.young)
	pushing := e.blob("old bytes, young link", e.old)
	e.link("team/app", pushing, e.young)
	// Removed: links, and bytes that nothing else needs.
	loose := e.blob("unreferenced layer", e.old)
	looseLink := e.link("team/app", loose, e.old)
	usedElsewhere := e.link("team/web", used, e.old)
	twice := e.blob("unreferenced in two repositories", e.old)
	twice1 := e.link("team/app", twice, e.old)
	twice2 := e.link("team/web", twice, e.old)
	halfLoose := e.blob("young in one repository", e.old)
	halfLooseLink := e.link("team/app", halfLoose, e.old)
	e.link("team/db", halfLoose, e.young)
	unlinked := e.blob("old, unlinked", e.old)
	// Uploads: one abandoned, one in progress, one session whose bytes are gone.
	e.upload("abandoned", "team/app", "abandoned bytes", e.old, e.old)
	e.upload("active", "team/app", "active bytes", e.old, e.young)
	e.session("lost", "team/app", e.old)
	// Debris a crash left in the disk store's tmp/.
	debris := e.tempFile("put-debris", e.now.Add(-2*berth.DefaultGCGrace))

	g := e.gc()
	g.DryRun = true
	dry := e.run(g)
	for _, b := range []berth.BlobInfo{used, young, pushing, loose, twice, halfLoose, unlinked} {
		e.wantBlob(b, true)
	}
	for _, l := range []berth.BlobLink{looseLink, usedElsewhere, twice1, twice2, halfLooseLink} {
		e.wantLink(l.Repository, berth.BlobInfo{Digest: l.Digest}, true)
	}
	e.wantUpload("abandoned", true)
	e.wantSession("abandoned", true)
	e.wantSession("lost", true)
	if _, err := os.Stat(debris); err != nil {
		t.Errorf("a dry run cleaned the temporary files: %v", err)
	}

	wet := e.run(e.gc())
	dryLinks, dryBlobs, dryUploads := reported(dry)
	links, blobs, uploads := reported(wet)
	wantReported(t, "links", links, linkLine(looseLink), linkLine(usedElsewhere), linkLine(twice1), linkLine(twice2), linkLine(halfLooseLink))
	wantReported(t, "blobs", blobs, blobLine(loose), blobLine(twice), blobLine(unlinked))
	wantReported(t, "uploads", uploads, uploadLine("abandoned", int64(len("abandoned bytes")), e.old))
	wantReported(t, "dry-run links", dryLinks, links...)
	wantReported(t, "dry-run blobs", dryBlobs, blobs...)
	wantReported(t, "dry-run uploads", dryUploads, uploads...)
	if dry.BlobBytes != wet.BlobBytes || dry.UploadBytes != wet.UploadBytes {
		t.Errorf("dry run counted %d blob and %d upload bytes, the real run %d and %d",
			dry.BlobBytes, dry.UploadBytes, wet.BlobBytes, wet.UploadBytes)
	}
	if want := loose.Size + twice.Size + unlinked.Size; wet.BlobBytes != want {
		t.Errorf("BlobBytes = %d, want %d", wet.BlobBytes, want)
	}
	if want := int64(len("abandoned bytes")); wet.UploadBytes != want {
		t.Errorf("UploadBytes = %d, want %d", wet.UploadBytes, want)
	}

	for _, b := range []berth.BlobInfo{used, young, pushing, halfLoose} {
		e.wantBlob(b, true)
	}
	for _, b := range []berth.BlobInfo{loose, twice, unlinked} {
		e.wantBlob(b, false)
	}
	e.wantUpload("abandoned", false)
	e.wantSession("abandoned", false)
	e.wantUpload("active", true)
	e.wantSession("active", true)
	e.wantSession("lost", false)
	if _, err := os.Stat(debris); !os.IsNotExist(err) {
		t.Errorf("old temporary file: %v, want it removed", err)
	}
}

// tempFile leaves a file in the disk store's tmp/ (see internal/disk's
// layout), as a crash or a write in progress does.
func (e *gcEnv) tempFile(name string, modTime time.Time) string {
	e.t.Helper()
	path := filepath.Join(e.store.Root(), "tmp", name)
	if err := os.WriteFile(path, []byte("partial"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chtimes(path, modTime, modTime); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// TestGCTempFiles: temporary files are nobody's record, so GC cannot re-check
// them; it removes only those older than the default grace, even when its own
// grace is shorter, so that a blob still being written keeps its file.
func TestGCTempFiles(t *testing.T) {
	e := newGCEnv(t)
	stale := e.tempFile("put-stale", e.now.Add(-berth.DefaultGCGrace-time.Second))
	writing := e.tempFile("put-writing", e.young)
	stalled := e.tempFile("put-stalled", e.old) // older than the grace: a slow client
	e.run(e.gc())
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("temporary file older than the default grace: %v, want it removed", err)
	}
	for _, path := range []string{writing, stalled} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("temporary file younger than the default grace: %v, want it kept", err)
		}
	}
}

func TestGCUploads(t *testing.T) {
	e := newGCEnv(t)
	e.upload("abandoned", "team/app", "abandoned bytes", e.old, e.old)
	e.upload("young", "team/app", "young bytes", e.young, e.young)
	// A long upload: the session is old, but bytes arrived recently.
	e.upload("long", "team/app", "long upload", e.old, e.young)
	e.session("lost", "team/app", e.old)
	e.session("starting", "team/app", e.young)

	rep := e.run(e.gc())
	_, _, uploads := reported(rep)
	wantReported(t, "uploads", uploads, uploadLine("abandoned", int64(len("abandoned bytes")), e.old))
	if rep.UploadBytes != int64(len("abandoned bytes")) {
		t.Errorf("UploadBytes = %d, want %d", rep.UploadBytes, len("abandoned bytes"))
	}
	e.wantUpload("abandoned", false)
	e.wantSession("abandoned", false)
	for _, id := range []string{"young", "long"} {
		e.wantUpload(id, true)
		e.wantSession(id, true)
	}
	e.wantSession("lost", false)
	e.wantSession("starting", true)
}

func TestGCNegativeGrace(t *testing.T) {
	for _, dry := range []bool{false, true} {
		e := newGCEnv(t)
		b := e.blob("old, unlinked", e.old)
		g := e.gc()
		g.Grace, g.DryRun = -time.Second, dry
		_, err := g.Run(e.ctx, e.now)
		if got := berth.ErrorCode(err); got != berth.CodeInvalid {
			t.Errorf("dry run %v: Run with a negative grace: code %q, want %q (err: %v)", dry, got, berth.CodeInvalid, err)
		}
		e.wantBlob(b, true)
	}
}

func TestGCProgress(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry run %v", dry), func(t *testing.T) {
			e := newGCEnv(t)
			used := e.blob("used", e.old)
			e.link("team/app", used, e.old)
			e.manifest("team/app", "v1", used)
			e.link("team/web", used, e.old) // unreferenced there: removed, bytes kept
			loose := e.blob("loose", e.old)
			e.link("team/app", loose, e.old)
			e.link("team/app", e.blob("young link", e.old), e.young)
			e.blob("unlinked", e.old)
			e.blob("young", e.young)
			e.upload("u-1", "team/app", "one", e.old, e.old)
			e.upload("u-2", "team/app", "two", e.old, e.old)
			e.upload("u-3", "team/app", "three", e.young, e.young)

			var events []berth.GCProgress
			g := e.gc()
			g.DryRun = dry
			g.Progress = func(p berth.GCProgress) { events = append(events, p) }
			rep := e.run(g)

			// Examined: the unreferenced old links; the old blobs; the old uploads.
			want := []struct {
				phase          string
				total, removed int
			}{
				{"links", 2, len(rep.Links)},
				{"blobs", 4, len(rep.Blobs)},
				{"uploads", 2, len(rep.Uploads)},
			}
			if len(rep.Links) != 2 || len(rep.Blobs) != 2 || len(rep.Uploads) != 2 {
				t.Errorf("removed %d links, %d blobs, %d uploads; want 2 each", len(rep.Links), len(rep.Blobs), len(rep.Uploads))
			}
			i := 0
			for _, w := range want {
				prev := berth.GCProgress{Phase: w.phase}
				for ; i < len(events) && events[i].Phase == w.phase; i++ {
					p := events[i]
					if p.Done != prev.Done+1 || p.Total != w.total || p.Removed < prev.Removed || p.Removed > prev.Removed+1 || p.Removed > p.Done {
						t.Errorf("%s: %+v after %+v", w.phase, p, prev)
					}
					prev = p
				}
				if prev.Done != w.total || prev.Removed != w.removed {
					t.Errorf("%s: last progress %+v, want Done %d of %d with %d removed", w.phase, prev, w.total, w.total, w.removed)
				}
			}
			if i != len(events) {
				t.Errorf("progress out of phase order: %+v", events[i:])
			}
		})
	}
}

// TestGCKeepsBlobWrittenDuringRun writes a blob again after GC has walked the
// blobs and before it deletes that blob: the fresh bytes must stay.
func TestGCKeepsBlobWrittenDuringRun(t *testing.T) {
	for _, linkToo := range []bool{false, true} {
		t.Run(fmt.Sprintf("linked %v", linkToo), func(t *testing.T) {
			e := newGCEnv(t)
			contents := map[berth.Digest]string{}
			var infos []berth.BlobInfo
			for _, c := range []string{"first", "second"} {
				b := e.blob(c, e.old)
				contents[b.Digest] = c
				infos = append(infos, b)
			}
			// After GC examined one of the two old unlinked blobs, which it
			// removed, a push commits the other again, as the registry does:
			// under the shared lock, then links it.
			var repushed []berth.Digest
			g := e.gc()
			g.Progress = func(p berth.GCProgress) {
				if p.Phase != "blobs" || p.Done != 1 {
					return
				}
				for d, c := range contents {
					unlock := e.shared(d)
					defer unlock()
					if _, err := e.store.Stat(e.ctx, d); err != nil {
						continue
					}
					info, err := e.store.Put(e.ctx, d, int64(len(c)), strings.NewReader(c))
					if err != nil {
						t.Error(err)
						return
					}
					if linkToo {
						e.link("team/app", info, time.Now())
					}
					repushed = append(repushed, d)
				}
			}
			rep := e.run(g)
			if len(repushed) != 1 {
				t.Fatalf("pushed %d blobs again during the run, want 1", len(repushed))
			}
			if len(rep.Blobs) != 1 || rep.Blobs[0].Digest == repushed[0] {
				t.Errorf("removed %+v; want only the blob not pushed again", rep.Blobs)
			}
			for _, b := range infos {
				e.wantBlob(b, b.Digest == repushed[0])
			}
		})
	}
}

// TestGCKeepsUploadWrittenDuringRun appends to an old upload after GC found it
// stale and before it deletes it: the upload is in use again and must stay.
func TestGCKeepsUploadWrittenDuringRun(t *testing.T) {
	e := newGCEnv(t)
	ids := []string{"u-1", "u-2"}
	for _, id := range ids {
		e.upload(id, "team/app", "old bytes", e.old, e.old)
	}
	var resumed []string
	g := e.gc()
	g.Progress = func(p berth.GCProgress) {
		if p.Phase != "uploads" || p.Done != 1 {
			return
		}
		for _, id := range ids {
			info, err := e.store.StatUpload(e.ctx, id)
			if err != nil {
				continue
			}
			if _, err := e.store.AppendUpload(e.ctx, id, info.Size, strings.NewReader(" and more")); err != nil {
				t.Error(err)
				return
			}
			resumed = append(resumed, id)
		}
	}
	rep := e.run(g)
	if len(resumed) != 1 {
		t.Fatalf("resumed %d uploads during the run, want 1", len(resumed))
	}
	if len(rep.Uploads) != 1 || rep.Uploads[0].ID == resumed[0] {
		t.Errorf("removed %+v; want only the upload not resumed", rep.Uploads)
	}
	for _, id := range ids {
		e.wantUpload(id, id == resumed[0])
		e.wantSession(id, id == resumed[0])
	}
}

// TestGCConcurrentPush races collections against pushes and checks that no
// stored manifest ever lacks a blob. Pushers do what the registry does: put
// and link each blob under the shared commit lock, then put the manifest,
// which fails with manifest_blob_unknown when GC removed a link first (the
// client then pushes again). Each pusher then deletes its previous manifest,
// as a pipeline replacing its image does, so garbage keeps coming while the
// live set stays small. Half of the collections run an hour ahead, so every
// blob looks old and only the lock and the re-check protect it.
func TestGCConcurrentPush(t *testing.T) {
	e := newGCEnv(t)
	const (
		pushers = 4
		each    = 50 // pushes per pusher
	)
	var (
		// Every few pushes a pusher waits for two more collections, so that
		// collections and pushes overlap however the scheduler runs them.
		gcMu             sync.Mutex
		gcCond           = sync.NewCond(&gcMu)
		gcRuns           int
		awaitCollections = func() {
			gcMu.Lock()
			for start := gcRuns; gcRuns < start+2; {
				gcCond.Wait()
			}
			gcMu.Unlock()
		}
		done            atomic.Bool
		pushes, refused atomic.Int64
		mu              sync.Mutex
		last            = map[int]*berth.Manifest{} // each pusher's last manifest
		wg              sync.WaitGroup
		base            = "base layer every push shares"
	)
	// wantBlobs checks that m's blobs are stored and linked.
	wantBlobs := func(when string, m *berth.Manifest) {
		for _, ref := range m.References {
			if _, err := e.store.Stat(e.ctx, ref.Digest); err != nil {
				t.Errorf("%s: manifest %s references blob %s: %v", when, m.Digest.Short(), ref.Digest.Short(), err)
			}
			if _, err := e.meta.FindBlobLink(e.ctx, m.Repository, ref.Digest); err != nil {
				t.Errorf("%s: manifest %s references blob %s: link: %v", when, m.Digest.Short(), ref.Digest.Short(), err)
			}
		}
	}
	for p := range pushers {
		wg.Go(func() {
			repo := fmt.Sprintf("team/app%d", p%2) // two pushers per repository
			var prev *berth.Manifest
			for i := range each {
				tag := fmt.Sprintf("p%d-%d", p, i)
				var layers []berth.BlobInfo
				for _, c := range []string{base, "layer " + tag} {
					d := berth.DigestOf("", []byte(c))
					unlock := e.shared(d)
					info, err := e.store.Put(e.ctx, d, int64(len(c)), strings.NewReader(c))
					if err == nil {
						err = e.meta.LinkBlob(e.ctx, berth.BlobLink{Repository: repo, Digest: d, Size: info.Size, Created: time.Now()})
					}
					unlock()
					if err != nil {
						t.Errorf("push %s: %v", tag, err)
						return
					}
					layers = append(layers, info)
				}
				m := gcManifest(repo, tag, time.Now(), layers...)
				err := e.meta.PutManifest(e.ctx, m, tag)
				if berth.IsCode(err, berth.CodeManifestBlobUnknown) {
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("push %s: %v", tag, err)
					return
				}
				pushes.Add(1)
				wantBlobs("just pushed", m)
				if prev != nil {
					// It lived through the collections since it was pushed.
					wantBlobs("before deleting it", prev)
					if err := e.meta.DeleteManifest(e.ctx, repo, prev.Digest); err != nil {
						t.Errorf("delete %s: %v", prev.Digest.Short(), err)
						return
					}
				}
				prev = m
				mu.Lock()
				last[p] = m
				mu.Unlock()
				if i%5 == 4 {
					awaitCollections()
				}
			}
		})
	}
	go func() {
		wg.Wait()
		done.Store(true)
	}()
	removed, n := 0, 0
	for ; !done.Load(); n++ {
		now := time.Now()
		if n%2 == 0 {
			now = now.Add(time.Hour)
		}
		g := &berth.GC{Meta: e.meta, Blobs: e.store, Uploads: e.store, Lock: e.lock, Grace: time.Nanosecond}
		rep, err := g.Run(e.ctx, now)
		if err != nil {
			t.Errorf("GC run %d: %v", n, err)
		}
		removed += len(rep.Blobs)
		gcMu.Lock()
		gcRuns++ // even after an error: waiting pushers must go on
		gcCond.Broadcast()
		gcMu.Unlock()
	}
	wg.Wait()
	t.Logf("%d manifests pushed, %d pushes refused, %d blobs collected in %d runs", pushes.Load(), refused.Load(), removed, n)
	if pushes.Load() == 0 || removed == 0 {
		t.Fatal("no push and collection overlapped: the test proved nothing")
	}
	for _, m := range last {
		wantBlobs("at the end", m)
	}
}

// TestGCKeepsCachedIndexWithMissingChild: an index the pull-through cache
// stored with one of its two children survives collection, and so do the
// child it holds and that child's blobs; what nothing references goes.
func TestGCKeepsCachedIndexWithMissingChild(t *testing.T) {
	e := newGCEnv(t)
	config := e.blob("config of arm64", e.old)
	layer := e.blob("layer of arm64", e.old)
	loose := e.blob("loose", e.old)
	for _, b := range []berth.BlobInfo{config, layer, loose} {
		e.link("hub/library/alpine", b, e.old)
	}
	child := e.manifest("hub/library/alpine", "", config, layer)
	missing := berth.DigestOf("", []byte("the amd64 manifest, never pulled"))
	content := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1}]}`, missing, child.Digest)
	index := &berth.Manifest{
		Repository: "hub/library/alpine", Digest: berth.DigestOf("", []byte(content)),
		MediaType: "application/vnd.oci.image.index.v1+json", Content: []byte(content), Created: e.old,
		References: []berth.Reference{{Digest: missing, Kind: berth.ReferenceManifest}, {Digest: child.Digest, Kind: berth.ReferenceManifest}},
	}
	if err := e.meta.PutCachedManifest(e.ctx, index, "3.20"); err != nil {
		t.Fatal(err)
	}

	rep := e.run(e.gc())
	links, blobs, _ := reported(rep)
	wantReported(t, "links", links, linkLine(berth.BlobLink{Repository: "hub/library/alpine", Digest: loose.Digest, Size: loose.Size, Created: e.old}))
	wantReported(t, "blobs", blobs, blobLine(loose))
	for _, b := range []berth.BlobInfo{config, layer} {
		e.wantBlob(b, true)
		e.wantLink("hub/library/alpine", b, true)
	}
	for _, ref := range []string{"3.20", index.Digest.String(), child.Digest.String()} {
		if _, err := e.meta.FindManifest(e.ctx, "hub/library/alpine", ref); err != nil {
			t.Errorf("manifest %s after GC: %v", ref, err)
		}
	}
}
