package storetest

import (
	"testing"

	"github.com/berth-dev/berth"
)

// CachingStore is a metadata store with a read cache (sqlstore.Store.CacheReads).
type CachingStore interface {
	berth.MetadataStore
	berth.RepositoryDeleter
	ReadCacheHeld() (manifests, links int)
}

// ReadCacheFollows checks that FindManifest and FindBlobLink of a, served
// from its read cache while nothing changed, see what a and b (another
// store on the same database, as another replica or a break-glass command
// is) wrote: a tag moved, a manifest, a tag, a blob link and a repository
// deleted. elsewhere runs one of b's writes and returns once a may see it
// (at once on SQLite; on PostgreSQL once a's notification arrived).
func ReadCacheFollows(t *testing.T, a, b CachingStore, elsewhere func(write func() error) error) {
	ctx := t.Context()
	byB := func(write func() error) {
		t.Helper()
		if err := elsewhere(write); err != nil {
			t.Fatal(err)
		}
	}
	tagged := func(s CachingStore, want berth.Digest) {
		t.Helper()
		for range 2 { // the second from the cache
			m, err := s.FindManifest(ctx, "team/app", "v1")
			if err != nil || m.Digest != want {
				t.Fatalf("v1 = %v, %v; want %s", m, err, want)
			}
		}
	}
	one, two := newManifest("team/app", "1", at(1)), newManifest("team/app", "2", at(1))
	must(t, a.PutManifest(ctx, one, "v1"))
	tagged(a, one.Digest)
	if n, _ := a.ReadCacheHeld(); n != 1 {
		t.Fatalf("the cache holds %d manifests after a read, want 1", n)
	}

	byB(func() error { return b.PutManifest(ctx, two, "v1") }) // the other writer moves the tag
	tagged(a, two.Digest)
	must(t, a.PutManifest(ctx, one, "v1")) // and this one back
	tagged(a, one.Digest)
	tagged(b, one.Digest)

	byB(func() error { return b.DeleteTag(ctx, "team/app", "v1") })
	if _, err := a.FindManifest(ctx, "team/app", "v1"); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("deleted tag: %v, want manifest_unknown", err)
	}
	for range 2 {
		if _, err := a.FindManifest(ctx, "team/app", one.Digest.String()); err != nil {
			t.Fatal(err)
		}
	}
	byB(func() error { return b.DeleteManifest(ctx, "team/app", one.Digest) })
	if _, err := a.FindManifest(ctx, "team/app", one.Digest.String()); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("deleted manifest: %v, want manifest_unknown", err)
	}

	d := digest("layer")
	link := berth.BlobLink{Repository: "team/app", Digest: d, Size: 5, Created: at(1)}
	must(t, a.LinkBlob(ctx, link))
	for range 2 {
		if l, err := a.FindBlobLink(ctx, "team/app", d); err != nil || l.Size != 5 {
			t.Fatalf("link = %v, %v", l, err)
		}
	}
	if _, n := a.ReadCacheHeld(); n != 1 {
		t.Fatalf("the cache holds %d links after a read, want 1", n)
	}
	byB(func() error { return b.UnlinkBlob(ctx, "team/app", d) })
	if _, err := a.FindBlobLink(ctx, "team/app", d); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("unlinked blob: %v, want blob_unknown", err)
	}

	must(t, a.LinkBlob(ctx, link))
	must(t, a.PutManifest(ctx, two, "v2"))
	for range 2 {
		if _, err := a.FindBlobLink(ctx, "team/app", d); err != nil {
			t.Fatal(err)
		}
		if _, err := a.FindManifest(ctx, "team/app", "v2"); err != nil {
			t.Fatal(err)
		}
	}
	byB(func() error { _, err := b.DeleteRepository(ctx, "team/app"); return err })
	if _, err := a.FindBlobLink(ctx, "team/app", d); !berth.IsCode(err, berth.CodeBlobUnknown) {
		t.Fatalf("deleted repository's blob: %v, want blob_unknown", err)
	}
	if _, err := a.FindManifest(ctx, "team/app", "v2"); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("deleted repository's tag: %v, want manifest_unknown", err)
	}
}

// ReadCacheCopiesManifest checks that a caller changing the manifest it got
// does not change what the next caller gets.
func ReadCacheCopiesManifest(t *testing.T, s CachingStore) {
	ctx := t.Context()
	m := newManifest("app", "copied", at(1))
	must(t, s.PutManifest(ctx, m, "v1"))
	for i := range 3 {
		got, err := s.FindManifest(ctx, "app", "v1")
		if err != nil || got.Digest != m.Digest || got.Repository != "app" {
			t.Fatalf("FindManifest = %+v, %v", got, err)
		}
		if n, _ := s.ReadCacheHeld(); i > 0 && n != 1 {
			t.Fatalf("the cache holds %d manifests, want 1", n)
		}
		got.Digest, got.Repository = "sha256:changed", "changed"
	}
}
