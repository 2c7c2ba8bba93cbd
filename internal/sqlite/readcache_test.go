package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/berth-dev/berth/internal/storetest"
)

// TestReadCacheFollowsEveryWriter checks that FindManifest and FindBlobLink,
// served from the read cache while nothing changed, see at once what another
// DB on the same file (as a break-glass berth gc, in another process, is)
// and this one wrote (storetest.ReadCacheFollows). It runs with the header mapped (unix) and read with pread (elsewhere).
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
	// Another DB on the file is another process's view: its commits move
	// the counter every connection shares, so they are seen at once.
	storetest.ReadCacheFollows(t, a, b, func(write func() error) error { return write() })
}

// TestReadCacheCopiesManifest checks that a caller changing the manifest it
// got does not change what the next caller gets.
func TestReadCacheCopiesManifest(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.ReadCacheCopiesManifest(t, db)
}
