package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/sqlstore"
	"github.com/berth-dev/berth/internal/storetest"
)

// newSchema returns a DSN selecting an empty schema of the test's own,
// dropped when it ends: each test has a database of its own, so tests are
// isolated and may run in parallel.
func newSchema(t testing.TB) string {
	t.Helper()
	return pgtest.Schema(t, "berth_test")
}

func open(t testing.TB, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) berth.MetadataStore {
		return open(t, newSchema(t))
	})
}

// migrationFiles returns how many migration steps the package embeds.
func migrationFiles(t testing.TB) int64 {
	t.Helper()
	steps, err := sqlstore.Steps(postgres.Dialect)
	if err != nil || len(steps) == 0 {
		t.Fatalf("list migrations: %v (%d steps)", err, len(steps))
	}
	return int64(len(steps))
}

// TestOpenConcurrently checks that replicas opening one new schema at once
// migrate it once between them, and that reopening applies nothing again.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	const replicas = 4
	errs := make(chan error, replicas)
	for range replicas {
		go func() {
			db, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	want := migrationFiles(t)
	if n := pgtest.Int(t, dsn, `SELECT count(*) FROM schema_migrations`); n != want {
		t.Errorf("schema_migrations has %d rows, want %d", n, want)
	}
	open(t, dsn).Close()
	if n := pgtest.Int(t, dsn, `SELECT count(*) FROM schema_migrations`); n != want {
		t.Errorf("after reopening, schema_migrations has %d rows, want %d", n, want)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	open(t, dsn).Close()
	pgtest.Exec(t, dsn, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	db, err := postgres.Open(t.Context(), dsn)
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a schema migrated by a newer berth")
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("the refusal does not name the schema's version: %v", err)
	}
}

func TestOpenWithoutSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.WithSearchPath(pgtest.DSN(t), "berth_test_no_such_schema")
	db, err := postgres.Open(t.Context(), dsn)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded with a search_path naming no existing schema")
	}
	if !strings.Contains(err.Error(), "search_path") {
		t.Errorf("the error does not say what to fix: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: refused at once.
	db, err := postgres.Open(ctx, "postgres://berth:s3cret-password@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "s3cret-password") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestReplicas checks what several berth replicas on one database rely on:
// each sees the others' writes at once, and their concurrent audit appends
// make one chain that verifies.
func TestReplicas(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

	// A write through one is read through the other.
	d := berth.DigestOf(berth.SHA256, []byte("layer"))
	if err := a.LinkBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: d, Size: 5, Created: now}); err != nil {
		t.Fatal(err)
	}
	content := []byte(`{"schemaVersion":2}`)
	m := &berth.Manifest{
		Repository: "team/app", Digest: berth.DigestOf(berth.SHA256, content),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Content: content,
		References: []berth.Reference{{Digest: d, Kind: berth.ReferenceBlob}}, Created: now,
	}
	if err := a.PutManifest(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	got, err := b.FindManifest(ctx, "team/app", "v1")
	if err != nil || got.Digest != m.Digest {
		t.Fatalf("B finds %v, %v; want the manifest A pushed", got, err)
	}
	p := berth.Principal{ID: "00000000-0000-4000-8000-000000000001", Name: "ci-web",
		ClientID: "c0000000-0000-4000-8000-000000000001", Kind: berth.PrincipalService, Created: now}
	if err := a.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdatePrincipal(ctx, p.ID, berth.PrincipalUpdate{Disabled: new(true)}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.FindPrincipalByID(ctx, p.ID); err != nil || !got.Disabled {
		t.Fatalf("A reads %+v, %v after B disabled it", got, err)
	}
	if err := b.CreatePrincipal(ctx, p); berth.ErrorCode(err) != berth.CodeConflict {
		t.Errorf("B creating what A created: %v, want conflict", err)
	}

	// Concurrent appends from both replicas chain one after another.
	const writers, batches, size = 4, 25, 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for _, db := range []*postgres.DB{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range batches {
					batch := make([]berth.AuditEvent, size)
					for j := range batch {
						batch[j] = berth.AuditEvent{Time: now.Add(time.Duration(i) * time.Second), Actor: "ci-web",
							Action: berth.AuditRegistryPull, Target: "team/app", Result: berth.AuditAllowed,
							RequestID: fmt.Sprintf("w%d-%d-%d", w, i, j)}
					}
					if err := db.AppendAuditEvents(ctx, batch); err != nil {
						errs <- err
						return
					}
					for j := 1; j < size; j++ {
						if batch[j].Seq != batch[0].Seq+int64(j) {
							errs <- fmt.Errorf("a batch was written as seqs %d and %d", batch[0].Seq, batch[j].Seq)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for name, db := range map[string]*postgres.DB{"A": a, "B": b} {
		v := &berth.AuditVerifier{}
		if err := db.AuditChain(ctx, v); err != nil {
			t.Fatalf("the chain read through %s does not verify: %v", name, err)
		}
		if want := int64(2 * writers * batches * size); v.Events() != want || v.Head().Seq != want {
			t.Errorf("through %s: %d events, head %d; want %d", name, v.Events(), v.Head().Seq, want)
		}
	}
}

// TestReplicasGCRacesPush runs garbage collection on one replica against
// pushes on another, many times: whichever wins, a stored manifest never
// references a blob its repository no longer links.
func TestReplicasGCRacesPush(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	old := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	cutoff := old.Add(time.Hour)
	pushed, collected := 0, 0
	for i := range 60 {
		d := berth.DigestOf(berth.SHA256, fmt.Appendf(nil, "layer %d", i))
		if err := a.LinkBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: d, Size: 1, Created: old}); err != nil {
			t.Fatal(err)
		}
		content := fmt.Appendf(nil, `{"n":%d}`, i)
		m := &berth.Manifest{Repository: "team/app", Digest: berth.DigestOf(berth.SHA256, content),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Content: content,
			References: []berth.Reference{{Digest: d, Kind: berth.ReferenceBlob}}, Created: cutoff.Add(time.Hour)}
		var (
			wg      sync.WaitGroup
			pushErr error
			deleted bool
			gcErr   error
		)
		wg.Go(func() { pushErr = a.PutManifest(ctx, m, fmt.Sprintf("v%d", i)) })
		wg.Go(func() { deleted, gcErr = b.DeleteBlobLinkIfUnreferenced(ctx, "team/app", d, cutoff) })
		wg.Wait()
		if gcErr != nil {
			t.Fatal(gcErr)
		}
		switch {
		case pushErr == nil && !deleted:
			pushed++
		case berth.ErrorCode(pushErr) == berth.CodeManifestBlobUnknown && deleted:
			collected++
		default:
			t.Fatalf("round %d: push returned %v and GC deleted %v: both won", i, pushErr, deleted)
		}
		_, linkErr := b.FindBlobLink(ctx, "team/app", d)
		if (linkErr == nil) != (pushErr == nil) {
			t.Fatalf("round %d: push %v, link %v", i, pushErr, linkErr)
		}
	}
	t.Logf("%d rounds won by the push, %d by GC", pushed, collected)
}

// TestDeleteManifestRacesTag deletes a manifest on one replica while another
// re-pushes and tags it: either order leaves no tag pointing at nothing and
// neither call fails on the other's locks.
func TestDeleteManifestRacesTag(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		content := fmt.Appendf(nil, `{"n":%d}`, i)
		m := &berth.Manifest{Repository: "team/app", Digest: berth.DigestOf(berth.SHA256, content),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Content: content, Created: now}
		if err := a.PutManifest(ctx, m, "first"); err != nil {
			t.Fatal(err)
		}
		var (
			wg                sync.WaitGroup
			putErr, deleteErr error
		)
		wg.Go(func() { putErr = a.PutManifest(ctx, m, "second") })
		wg.Go(func() { deleteErr = b.DeleteManifest(ctx, "team/app", m.Digest) })
		wg.Wait()
		if putErr != nil || deleteErr != nil {
			t.Fatalf("round %d: put %v, delete %v", i, putErr, deleteErr)
		}
		_, byDigest := b.FindManifest(ctx, "team/app", string(m.Digest))
		_, byTag := b.FindManifest(ctx, "team/app", "second")
		if (byDigest == nil) != (byTag == nil) {
			t.Fatalf("round %d: by digest %v, by tag %v", i, byDigest, byTag)
		}
		if byDigest == nil {
			if err := a.DeleteManifest(ctx, "team/app", m.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestReplicasClaimOnce has dispatchers on two replicas claim one queue at
// once: every delivery is claimed once, none twice within its lease.
func TestReplicasClaimOnce(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	const hooks = 20
	for i := range hooks {
		w := berth.Webhook{ID: fmt.Sprintf("d1000000-0000-4000-8000-%012d", i), URL: "https://hooks.example.com/",
			Events: []berth.EventType{berth.EventImagePushed}, Secret: berth.WebhookSecretOf("brw_x"), Created: now}
		if err := a.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		d := berth.Delivery{ID: fmt.Sprintf("e1000000-0000-4000-8000-%012d", i), WebhookID: w.ID, EventID: "e",
			EventType: berth.EventImagePushed, Body: []byte("{}"), Status: berth.DeliveryPending, NextAttempt: now, Created: now}
		if _, err := b.EnqueueDeliveries(ctx, "", []berth.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
	)
	for _, db := range []*postgres.DB{a, b, a, b} {
		wg.Go(func() {
			for range 10 {
				ds, err := db.ClaimDueDeliveries(ctx, now, time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range ds {
					claimed[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != hooks {
		t.Errorf("%d deliveries claimed, want %d", len(claimed), hooks)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times within its lease", id, n)
		}
	}
}

// TestReadCacheFollowsEveryWriter checks that FindManifest and FindBlobLink,
// served from the read cache, see at once what this DB wrote and, once its
// notification arrives, what another DB on the schema (another replica)
// wrote. The clock stands still, so a missing notification is not hidden by
// the second the counter also moves with.
func TestReadCacheFollowsEveryWriter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	postgres.StopClock(a)
	heard := make(chan string, 1024)
	listening := listenWith(t, ctx, a, func(what string) {
		select {
		case heard <- what:
		default:
		}
	})
	// hear waits for the next notification of what, ignoring others.
	hear := func(what string) error {
		timeout := time.After(10 * time.Second)
		for {
			select {
			case got := <-heard:
				if got == what {
					return nil
				}
			case <-timeout:
				return fmt.Errorf("no %q notification reached the listener in 10 s", what)
			}
		}
	}
	barriers := 0
	storetest.ReadCacheFollows(t, a, b, func(write func() error) error {
		// What a announced of its own writes is delivered before a barrier
		// it sends after them: once the barrier arrived, the next
		// registry notification is b's write's.
		barriers++
		barrier := fmt.Sprintf("test-barrier-%d", barriers)
		if err := a.Notify(ctx, barrier); err != nil {
			return err
		}
		if err := hear(barrier); err != nil {
			return err
		}
		before := postgres.Moves(a)
		if err := write(); err != nil {
			return err
		}
		if err := hear(postgres.PayloadRegistry); err != nil {
			return fmt.Errorf("the other DB's write: %w", err)
		}
		if postgres.Moves(a) == before {
			return errors.New("the notification of the other DB's write did not move the counter")
		}
		return nil
	})

	// A DB that stopped listening no longer hears of the other's writes,
	// so it must not serve what it kept.
	bg := context.Background()
	c1, c2 := []byte(`{"schemaVersion":2,"n":"a"}`), []byte(`{"schemaVersion":2,"n":"b"}`)
	m1 := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, c1), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c1, Created: time.Unix(1, 0)}
	m2 := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, c2), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c2, Created: time.Unix(1, 0)}
	if err := a.PutManifest(bg, m1, "latest"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := a.FindManifest(bg, "app", "latest"); err != nil || got.Digest != m1.Digest {
			t.Fatalf("latest = %v, %v", got, err)
		}
	}
	cancel()
	<-listening
	if err := b.PutManifest(bg, m2, "latest"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.FindManifest(bg, "app", "latest"); err != nil || got.Digest != m2.Digest {
		t.Fatalf("after the listener stopped, latest = %v, %v; want %s", got, err, m2.Digest)
	}
}

// TestReadCacheOutlivesOtherWrites checks that the writes of a push that
// change nothing a read keeps (an upload session, a blob linked) leave the
// read cache's counter where it was, so the replica taking the push goes
// on answering GETs from memory, while a tag it deletes is gone at once
// for its own reads.
func TestReadCacheOutlivesOtherWrites(t *testing.T) {
	t.Parallel()
	db := open(t, newSchema(t))
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	notices := make(chan string, 16)
	done := listenWith(t, ctx, db, func(what string) { notices <- what })
	t.Cleanup(func() { cancel(); <-done })
	postgres.StopClock(db)
	c := []byte(`{"schemaVersion":2,"n":"kept"}`)
	m := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, c), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c, Created: time.Unix(1, 0)}
	if err := db.PutManifest(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	// The tag's own notice comes back through LISTEN and moves the counter
	// once more; what is read before it arrives is not kept.
	select {
	case <-notices:
	case <-time.After(10 * time.Second):
		t.Fatal("the tag's own notice did not come back within 10s")
	}
	if _, err := db.FindManifest(ctx, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	before := postgres.Moves(db)
	session := berth.UploadSession{ID: "u1", Repository: "app", Created: time.Unix(2, 0)}
	if err := db.CreateUploadSession(ctx, session); err != nil {
		t.Fatal(err)
	}
	layer := berth.DigestOf(berth.SHA256, []byte("layer"))
	if err := db.LinkUploadedBlob(ctx, berth.BlobLink{Repository: "app", Digest: layer, Size: 5, Created: time.Unix(2, 0)}, session.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.LinkBlob(ctx, berth.BlobLink{Repository: "app", Digest: berth.DigestOf(berth.SHA256, []byte("config")), Size: 6, Created: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	if n := postgres.Moves(db) - before; n != 0 {
		t.Fatalf("a session and two blob links moved the read cache's counter %d times, want 0", n)
	}
	if n, _ := db.ReadCacheHeld(); n != 1 {
		t.Fatalf("the cache holds %d manifests after the push's writes, want 1", n)
	}
	if err := db.DeleteTag(ctx, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	if postgres.Moves(db) == before {
		t.Fatal("deleting a tag did not move the counter")
	}
	if _, err := db.FindManifest(ctx, "app", "v1"); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Fatalf("v1 read right after its deletion: %v, want manifest_unknown", err)
	}
}

// TestReadCacheOnlyWhileListening checks that a DB that does not listen
// reads every time: nothing would tell it of another replica's writes.
func TestReadCacheOnlyWhileListening(t *testing.T) {
	t.Parallel()
	db := open(t, newSchema(t))
	defer db.Close()
	storetest.ReadCacheCopiesManifest(t, withListener(t, db))
	db2 := open(t, newSchema(t))
	defer db2.Close()
	ctx := context.Background()
	c := []byte(`{"schemaVersion":2}`)
	m := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, c), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: c, Created: time.Unix(1, 0)}
	if err := db2.PutManifest(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db2.FindManifest(ctx, "app", "v1"); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db2.ReadCacheHeld(); n != 0 {
		t.Fatalf("a DB that does not listen keeps %d manifests", n)
	}
}

// listen runs db.Listen until ctx is done, and returns once its LISTEN is in
// place; the channel it returns is closed when Listen returned.
func listen(t testing.TB, ctx context.Context, db *postgres.DB) <-chan struct{} {
	t.Helper()
	return listenWith(t, ctx, db, func(string) {})
}

// listenWith is listen, handing each notification to fn.
func listenWith(t testing.TB, ctx context.Context, db *postgres.DB, fn func(what string)) <-chan struct{} {
	t.Helper()
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		db.Listen(ctx, fn, func(err error) { t.Logf("listen: %v", err) }, ready)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatal("Listen returned before listening")
	}
	return done
}

// withListener returns db, listening until the test ends.
func withListener(t testing.TB, db *postgres.DB) *postgres.DB {
	ctx, cancel := context.WithCancel(context.Background())
	done := listen(t, ctx, db)
	t.Cleanup(func() { cancel(); <-done })
	return db
}
