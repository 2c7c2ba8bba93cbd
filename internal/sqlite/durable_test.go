package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// TestWritesReturnDurable checks group commit's promise: every write, a
// single statement or a transaction, returns only once an fsync of the WAL
// begun after its commit has ended, however many writers run at once.
func TestWritesReturnDurable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(what string) {
		t.Helper()
		db.sync.mu.Lock()
		defer db.sync.mu.Unlock()
		if db.sync.synced != db.sync.committed || db.sync.err != nil {
			t.Fatalf("after %s: %d commits, %d known durable, err %v", what, db.sync.committed, db.sync.synced, db.sync.err)
		}
	}
	// One statement (Write().Exec) and one transaction (LinkBlob).
	before := db.sync.committed
	if err := db.CreateUploadSession(ctx, berth.UploadSession{ID: "u1", Repository: "app", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	check("a statement")
	if err := db.LinkBlob(ctx, berth.BlobLink{Repository: "app", Digest: berth.DigestOf("sha256", []byte("x")), Size: 1, Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	check("a transaction")
	if got := db.sync.committed - before; got != 2 {
		t.Fatalf("%d commits noted for two writes", got)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				d := berth.DigestOf("sha256", fmt.Appendf(nil, "%d-%d", g, i))
				if err := db.LinkBlob(ctx, berth.BlobLink{Repository: "app", Digest: d, Size: 1, Created: time.Unix(1, 0)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check("concurrent writes")
}

// TestFailedSyncIsSticky checks that once an fsync of the WAL failed, no
// write is reported durable again: the kernel may have dropped the pages it
// could not write, so a later fsync that succeeds proves nothing.
func TestFailedSyncIsSticky(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A WAL path that cannot be opened for writing (a directory) makes the
	// sync fail as a failing disk would.
	db.sync.mu.Lock()
	db.sync.path = dir
	if db.sync.f != nil {
		db.sync.f.Close()
		db.sync.f = nil
	}
	db.sync.mu.Unlock()
	if err := db.CreateUploadSession(ctx, berth.UploadSession{ID: "u1", Repository: "app", Created: time.Unix(1, 0)}); err == nil {
		t.Fatal("a write whose sync failed was reported done")
	}
	db.sync.mu.Lock()
	db.sync.path = db.path + "-wal"
	db.sync.mu.Unlock()
	if err := db.CreateUploadSession(ctx, berth.UploadSession{ID: "u2", Repository: "app", Created: time.Unix(1, 0)}); err == nil {
		t.Fatal("a write after a failed sync was reported durable")
	}
}
