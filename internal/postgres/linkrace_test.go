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
	waiting := func(what, like string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var n int
			must(ctl.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, like).Scan(&n))
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never waited", what)
			}
		}
	}
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
	waiting("the racing commit, on the third commit's link", "%INSERT INTO repositories%")
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
