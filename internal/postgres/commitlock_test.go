package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
)

func commitLocker(t *testing.T, db *postgres.DB) *postgres.CommitLocker {
	t.Helper()
	l, err := db.CommitLocker(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// gets reports whether acquire takes d within 300ms; it releases it then.
// Use it where d must stay held: a loaded machine only makes it wait longer.
// Where d must be free, use getsSoon, which gives a slow machine time.
func gets(t *testing.T, acquire func(context.Context, berth.Digest) (func(), error), d berth.Digest) bool {
	t.Helper()
	return getsWithin(t, 300*time.Millisecond, acquire, d)
}

// getsSoon reports whether acquire takes d within 30s; it releases it then.
func getsSoon(t *testing.T, acquire func(context.Context, berth.Digest) (func(), error), d berth.Digest) bool {
	t.Helper()
	return getsWithin(t, 30*time.Second, acquire, d)
}

func getsWithin(t *testing.T, wait time.Duration, acquire func(context.Context, berth.Digest) (func(), error), d berth.Digest) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	unlock, err := acquire(ctx, d)
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	return true
}

// waitForWaiter returns once a session waits for the commit lock of d in the
// schema of dsn, so that what follows tests a wait, not a free lock. It
// repeats the lock's key (commitLockName, lockKeySQL): pg_locks shows a
// bigint advisory key as classid (high half) and objid (low half).
func waitForWaiter(t *testing.T, dsn string, d berth.Digest) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pgtest.Int(t, dsn, `
		SELECT count(*) FROM pg_locks,
			(SELECT hashtextextended(current_schema() || '/' || $1, 0) AS k) key
		WHERE locktype = 'advisory' AND objsubid = 1 AND NOT granted
			AND classid::bigint = (key.k >> 32) & 4294967295 AND objid::bigint = key.k & 4294967295`,
		"blob "+d.String()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no session waits for the lock of %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCommitLockerAcrossReplicas: the lockers of two replicas on one schema
// exclude each other per digest: shared holders share, an exclusive holder
// excludes both kinds, and other digests are free.
func TestCommitLockerAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	la, lb := commitLocker(t, a), commitLocker(t, b)
	d, other := berth.DigestOf("", []byte("layer")), berth.DigestOf("", []byte("other layer"))

	unlock, err := la.LockShared(t.Context(), d) // A commits d
	if err != nil {
		t.Fatal(err)
	}
	if !getsSoon(t, lb.LockShared, d) {
		t.Error("B cannot commit d while A commits it")
	}
	if gets(t, lb.Lock, d) {
		t.Error("B's GC deleted d while A commits it")
	}
	if !getsSoon(t, lb.Lock, other) {
		t.Error("B's GC waits for another digest than the one A commits")
	}
	unlock()
	unlock() // twice is harmless

	unlock, err = lb.Lock(t.Context(), d) // B collects d
	if err != nil {
		t.Fatal(err)
	}
	if gets(t, la.LockShared, d) || gets(t, la.Lock, d) {
		t.Error("A took d while B's GC holds it")
	}
	if !getsSoon(t, la.LockShared, other) {
		t.Error("A waits to commit another digest than the one B collects")
	}
	// A waits, and gets d once B lets go.
	got := make(chan error, 1)
	go func() {
		u, err := la.LockShared(t.Context(), d)
		if err == nil {
			u()
		}
		got <- err
	}()
	waitForWaiter(t, dsn, d)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A never got d after B released it")
	}
	// The waits that timed out above left nothing held.
	if !getsSoon(t, lb.Lock, d) || !getsSoon(t, la.Lock, d) {
		t.Error("a wait that gave up left d held")
	}
}

// TestCommitLockerReleasedWithReplica: a replica whose connection dies while
// it holds a digest (killed, network lost) frees it for the others.
func TestCommitLockerReleasedWithReplica(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	la, lb := commitLocker(t, a), commitLocker(t, b)
	d := berth.DigestOf("", []byte("layer"))
	unlock, err := la.Lock(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if gets(t, lb.LockShared, d) {
		t.Fatal("B took d while A holds it")
	}
	// End the session holding d's lock, as the server does when a replica dies.
	pgtest.Exec(t, dsn, `
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND granted
		  AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(current_schema() || '/' || $1, 0)`,
		"blob "+d.String())
	deadline := time.Now().Add(10 * time.Second)
	for !gets(t, lb.LockShared, d) {
		if time.Now().After(deadline) {
			t.Fatal("d stayed held after the session holding it ended")
		}
	}
	unlock() // on a dead connection: must not hang or panic
	if !getsSoon(t, la.Lock, d) {
		t.Error("A cannot lock d again after its connection died")
	}
}

// TestGCRacesCommitAcrossReplicas pushes one blob through replica A while
// replica B collects garbage on the same schema and blob folder, round after
// round: the blob's bytes are there and unlinked (an earlier push whose link
// was collected), so B deletes them unless A's commit holds the digest. A
// link to missing bytes must never remain.
func TestGCRacesCommitAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	la, lb := commitLocker(t, a), commitLocker(t, b)
	gcRaceRounds(t, a, b, la, lb, 40)
}

// gcRaceRounds runs the rounds of TestGCRacesCommitAcrossReplicas with
// replica A committing under commits and B collecting under gcLock, and
// fails on a link without bytes. It returns in how many rounds GC deleted
// the bytes (before A committed them again, or with A's link gone).
func gcRaceRounds(t *testing.T, a, b *postgres.DB, commits, gcLock berth.CommitLocker, rounds int) (deleted int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "storage")
	storeA, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	storeB, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	h := &oci.Handler{Meta: a, Blobs: storeA, Uploads: storeA, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		NewID: func() string { return fmt.Sprintf("upload-%d", n.Add(1)) }, Commits: commits, MaxManifestSize: 4 << 20}
	srv := httptest.NewServer(h)
	defer srv.Close()
	content := bytes.Repeat([]byte("layer "), 4096)
	d := berth.DigestOf("", content)
	const repo = "team/app"
	for round := range rounds {
		if _, err := storeB.Put(t.Context(), d, int64(len(content)), bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		// Old enough to collect; the upload and the link A writes are not.
		age(t, dir, d.Encoded(), time.Now().Add(-time.Hour))
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { // replica A: docker push
			<-start
			time.Sleep(time.Duration(round%8) * time.Millisecond) // land at different points of the collection
			resp, err := http.Post(srv.URL+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(content))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("round %d: push answered %s", round, resp.Status)
			}
		})
		var rep berth.GCReport
		wg.Go(func() { // replica B: scheduled collection, everything looks old
			<-start
			gc := &berth.GC{Meta: b, Blobs: slowStat{storeB}, Uploads: storeB, Lock: gcLock, Grace: time.Minute}
			var err error
			if rep, err = gc.Run(t.Context(), time.Now()); err != nil {
				t.Errorf("round %d: gc: %v", round, err)
			}
		})
		close(start)
		wg.Wait()
		if len(rep.Blobs) > 0 {
			deleted++
		}
		_, linkErr := a.FindBlobLink(t.Context(), repo, d)
		_, statErr := storeA.Stat(t.Context(), d)
		if linkErr == nil && statErr != nil {
			t.Errorf("round %d: %s is linked in %s but its bytes are gone: %v", round, d.Short(), repo, statErr)
		}
		// The next round starts unlinked, as after a collection.
		if linkErr == nil {
			if _, err := b.DeleteBlobLinkIfUnreferenced(t.Context(), repo, d, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("GC deleted the old bytes in %d of %d rounds", deleted, rounds)
	return deleted
}

// slowStat is a blob store whose Stat answers late, as an object store's
// HEAD may: it widens the moment between garbage collection's re-check of a
// blob and its deletion, where only the commit lock keeps a push out.
type slowStat struct{ *disk.Store }

func (s slowStat) Stat(ctx context.Context, d berth.Digest) (berth.BlobInfo, error) {
	info, err := s.Store.Stat(ctx, d)
	time.Sleep(10 * time.Millisecond)
	return info, err
}

// age sets the modification time of the file called name under the disk
// store root: the disk store has no clock of its own.
func age(t *testing.T, root, name string, mtime time.Time) {
	t.Helper()
	found := false
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.Name() != name {
			return err
		}
		found = true
		return os.Chtimes(path, mtime, mtime)
	})
	if err != nil || !found {
		t.Fatalf("age %s: found %v, %v", name, found, err)
	}
}
