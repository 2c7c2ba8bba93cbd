package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// TestReadCacheFollowsEveryWriter checks that FindManifest and FindBlobLink,
// served from the read cache while nothing changed, see at once what another
// DB on the same file (as a break-glass berth gc, in another process, is)
// and this one wrote: a tag moved, a manifest and a tag deleted, a blob
// unlinked.
// It runs with the header mapped (unix) and read with pread (elsewhere).
func TestReadCacheFollowsEveryWriter(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		t.Run(map[bool]string{true: "mapped", false: "pread"}[mapped], func(t *testing.T) { testReadCacheFollows(t, mapped) })
	}
}

func testReadCacheFollows(t *testing.T, mapped bool) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "berth.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.cache == nil {
		t.Fatal("no read cache on a WAL database")
	}
	switch {
	case mapped && a.cache.mapped == nil && runtime.GOOS != "windows":
		t.Fatal("the wal-index header is not mapped")
	case mapped && a.cache.mapped == nil:
		t.Skip("no mapping here")
	case !mapped && a.cache.mapped != nil:
		if err := unmapHeader(a.cache.mapped); err != nil {
			t.Fatal(err)
		}
		a.cache.mapped = nil
	}
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	manifest := func(s string) *berth.Manifest {
		c := []byte(`{"schemaVersion":2,"n":"` + s + `"}`)
		return &berth.Manifest{Repository: "team/app", Digest: berth.DigestOf(berth.SHA256, c),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c, Created: time.Unix(1, 0)}
	}
	tagged := func(db *DB, want berth.Digest) {
		t.Helper()
		for range 2 { // the second from the cache
			m, err := db.FindManifest(ctx, "team/app", "v1")
			if err != nil || m.Digest != want {
				t.Fatalf("v1 = %v, %v; want %s", m, err, want)
			}
		}
	}
	one, two := manifest("1"), manifest("2")
	if err := a.PutManifest(ctx, one, "v1"); err != nil {
		t.Fatal(err)
	}
	tagged(a, one.Digest)
	a.cache.mu.RLock()
	_, kept := a.cache.manifests[manifestKey{"team/app", "v1"}]
	a.cache.mu.RUnlock()
	if !kept {
		t.Fatal("the manifest read was not kept")
	}

	if err := b.PutManifest(ctx, two, "v1"); err != nil { // the other writer moves the tag
		t.Fatal(err)
	}
	tagged(a, two.Digest)
	if err := a.PutManifest(ctx, one, "v1"); err != nil { // and this one back
		t.Fatal(err)
	}
	tagged(a, one.Digest)
	tagged(b, one.Digest)

	if err := b.DeleteTag(ctx, "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FindManifest(ctx, "team/app", "v1"); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("deleted tag: %v, want manifest_unknown", err)
	}
	if _, err := a.FindManifest(ctx, "team/app", one.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteManifest(ctx, "team/app", one.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FindManifest(ctx, "team/app", one.Digest.String()); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("deleted manifest: %v, want manifest_unknown", err)
	}

	d := berth.DigestOf(berth.SHA256, []byte("layer"))
	if err := a.LinkBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: d, Size: 5, Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if l, err := a.FindBlobLink(ctx, "team/app", d); err != nil || l.Size != 5 {
			t.Fatalf("link = %v, %v", l, err)
		}
	}
	if err := b.UnlinkBlob(ctx, "team/app", d); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FindBlobLink(ctx, "team/app", d); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("unlinked blob: %v, want blob_unknown", err)
	}
}

// TestReadCacheCopiesManifest checks that a caller changing the manifest it
// got does not change what the next caller gets.
func TestReadCacheCopiesManifest(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := []byte(`{"schemaVersion":2}`)
	m := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, c), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c, Created: time.Unix(1, 0)}
	if err := db.PutManifest(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := db.FindManifest(ctx, "app", "v1")
		if err != nil || got.Digest != m.Digest || got.Repository != "app" {
			t.Fatalf("FindManifest = %+v, %v", got, err)
		}
		got.Digest, got.Repository = "sha256:changed", "changed"
	}
}
