package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// Two pushes of one layer into a new repository, with a third commit of
// that layer between them: the commit that waited for the repository's
// creator must not lock the repository's row so that the third commit's
// foreign-key check (FOR KEY SHARE) waits on it while it waits on the
// third commit's link: that was a deadlock. The interleaving is forced
// with locks, each step waiting until PostgreSQL shows the one before
// waiting.
func TestLinkRacingANewRepositoryDoesNotDeadlock(t *testing.T) {
	ctx := context.Background()
	dsn := newSchema(t)
	db := open(t, dsn)
	defer db.Close()
	conn := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	ctl, creator, third := conn(), conn(), conn()
	var thirdPID int
	if err := third.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&thirdPID); err != nil {
		t.Fatal(err)
	}
	const key = 0x6c696e6b // held by ctl while the third commit waits on it
	if _, err := ctl.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	waiting := func(what, like string) { t.Helper(); waitForLockWait(t, ctl, what, like) }
	d := berth.DigestOf(berth.SHA256, []byte("layer"))
	must(db.CreateUploadSession(ctx, berth.UploadSession{ID: "u-1", Repository: "team/new", Created: time.Now()}))

	// The creator: the repository exists, not committed yet.
	tx, err := creator.Begin(ctx)
	must(err)
	var id int64
	must(tx.QueryRow(ctx, `INSERT INTO repositories (name, created) VALUES ('team/new', now()) RETURNING id`).Scan(&id))
	// The racing commit: its snapshot saw no repository; it waits for the creator.
	linked := make(chan error, 1)
	go func() {
		linked <- db.LinkUploadedBlob(ctx, berth.BlobLink{Repository: "team/new", Digest: d, Size: 5, Created: time.Now()}, "u-1")
	}()
	waiting("the racing commit, on the creator", "%INSERT INTO repositories%")
	// The third commit links the layer, then waits (ctl's lock) before its
	// statement ends, where its foreign-key check runs.
	thirdDone := make(chan error, 1)
	go func() {
		_, err := third.Exec(ctx, `WITH l AS (INSERT INTO blob_links (repo_id, digest, size, created) VALUES ($1, $2, 5, now()) RETURNING 1)
			SELECT pg_advisory_xact_lock($3) FROM l`, id, string(d), key)
		thirdDone <- err
	}()
	waiting("the third commit, on the control lock", "%pg_advisory_xact_lock%")
	must(tx.Commit(ctx))
	// The racing commit now waits on the third commit itself (not on the
	// creator any more): some backend is blocked by the third's.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		must(ctl.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, thirdPID).Scan(&n))
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the racing commit never waited on the third commit's link")
		}
	}
	_, err = ctl.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
	must(err)
	for what, ch := range map[string]chan error{"the third commit": thirdDone, "the racing commit": linked} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never finished", what)
		}
	}
	if l, err := db.FindBlobLink(ctx, "team/new", d); err != nil || l.Size != 5 {
		t.Errorf("the link: %+v %v", l, err)
	}
}

// waitForLockWait returns once a statement like like waits on a lock, as
// pg_stat_activity shows through c, or fails the test after 10 s.
func waitForLockWait(t *testing.T, c *pgx.Conn, what, like string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited", what)
		}
	}
}

// A commit that found its repository, which a concurrent delete then
// removed before the link's foreign-key check, creates it anew and links,
// rather than failing with the foreign-key violation.
func TestLinkIntoARepositoryDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	dsn := newSchema(t)
	db := open(t, dsn)
	defer db.Close()
	ctl, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close(ctx)
	deleter, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer deleter.Close(ctx)
	if err := db.LinkBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: berth.DigestOf(berth.SHA256, []byte("old")), Size: 3, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	d := berth.DigestOf(berth.SHA256, []byte("new"))
	if err := db.CreateUploadSession(ctx, berth.UploadSession{ID: "u-1", Repository: "team/app", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The delete holds the repository's row, not committed yet.
	tx, err := deleter.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM blob_links WHERE repo_id = (SELECT id FROM repositories WHERE name = 'team/app')`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM repositories WHERE name = 'team/app'`); err != nil {
		t.Fatal(err)
	}
	linked := make(chan error, 1)
	go func() {
		linked <- db.LinkUploadedBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: d, Size: 3, Created: time.Now()}, "u-1")
	}()
	waitForLockWait(t, ctl, "the commit's foreign-key check, on the delete", "%INSERT INTO repositories%")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-linked:
		if err != nil {
			t.Fatalf("the commit into a repository deleted meanwhile: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the commit never finished")
	}
	if l, err := db.FindBlobLink(ctx, "team/app", d); err != nil || l.Size != 3 {
		t.Errorf("the link: %+v %v", l, err)
	}
	if _, err := db.FindUploadSession(ctx, "u-1"); !berth.IsCode(err, berth.CodeBlobUploadUnknown) {
		t.Errorf("the session after the link: %v", err)
	}
}
