package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/storetest"
)

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) berth.MetadataStore {
		return open(t, filepath.Join(t.TempDir(), "berth.db"))
	})
}

// TestReopen checks that data survives closing and reopening the file, and that
// opening an up-to-date database applies no migration twice.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "berth.db")
	created := time.Date(2026, 3, 14, 15, 9, 26, 535_897_000, time.UTC)

	db := open(t, path)
	d := berth.DigestOf(berth.SHA256, []byte("layer"))
	if err := db.LinkBlob(ctx, berth.BlobLink{Repository: "team/app", Digest: d, Size: 5, Created: created}); err != nil {
		t.Fatal(err)
	}
	m := &berth.Manifest{
		Repository: "team/app",
		Digest:     berth.DigestOf(berth.SHA256, []byte("{}")),
		MediaType:  "application/vnd.oci.image.manifest.v1+json",
		Content:    []byte("{}"),
		References: []berth.Reference{{Digest: d, Kind: berth.ReferenceBlob}},
		Created:    created,
	}
	if err := db.PutManifest(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		db := open(t, path)
		got, err := db.FindManifest(ctx, "team/app", "v1")
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if got.Digest != m.Digest || !got.Created.Equal(created) {
			t.Errorf("reopen %d: got %s created %v, want %s created %v", i, got.Digest, got.Created, m.Digest, created)
		}
		link, err := db.FindBlobLink(ctx, "team/app", d)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if !link.Created.Equal(created) {
			t.Errorf("reopen %d: link created %v, want %v (microseconds kept)", i, link.Created, created)
		}
		if n, want := countMigrations(t, path), migrationFiles(t); n != want {
			t.Errorf("reopen %d: schema_migrations has %d rows, want %d", i, n, want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenConcurrently checks that processes (here, DBs) opening one new file
// at once migrate it once between them.
func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := sqlite.Open(t.Context(), path)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n, want := countMigrations(t, path), migrationFiles(t); n != want {
		t.Errorf("schema_migrations has %d rows, want %d", n, want)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	db := open(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	execRaw(t, path, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	if db, err := sqlite.Open(t.Context(), path); err == nil {
		db.Close()
		t.Fatal("Open accepted a database migrated by a newer berth")
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir())
	path := filepath.Join(dir, "a ?b#c%20d.db")
	db := open(t, path)
	if err := db.LinkBlob(t.Context(), berth.BlobLink{Repository: "r", Digest: berth.DigestOf("", nil), Created: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := db.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	matches, err := filepath.Glob(filepath.Join(dir, "a ?b#c%20d.db"))
	if err != nil || len(matches) != 1 {
		t.Errorf("the database is not at %q: %v %v", path, matches, err)
	}
}

// TestOpenRenumbersAssertionStep checks that a file migrated by a build
// before the shared migration list, which recorded the assertion step as
// version 8, opens: the step becomes 9 (its number on every engine) and 8
// (PostgreSQL's cluster step, nothing on SQLite) is recorded without
// applying anything twice.
func TestOpenRenumbersAssertionStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	execRaw(t, path, `DELETE FROM schema_migrations WHERE version IN (8, 9)`)
	execRaw(t, path, `INSERT INTO schema_migrations (version, name) VALUES (8, '0008_assertions.sql')`)
	db := open(t, path)
	ctx := t.Context()
	if ok, err := db.RememberAssertion(ctx, "k", time.Unix(100, 0), time.Unix(10, 0)); err != nil || !ok {
		t.Fatalf("RememberAssertion after renumbering = %v, %v", ok, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := rawDB(t, path).Query(`SELECT version || ' ' || name FROM schema_migrations WHERE version IN (8, 9) ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []string{"8 0008_cluster.sql", "9 0009_assertions.sql"}; !slices.Equal(got, want) {
		t.Errorf("schema_migrations 8 and 9 = %q, want %q", got, want)
	}
}
