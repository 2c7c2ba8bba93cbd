package lifecycle_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
)

// These tests run the Enforcer and retention on real stores, SQLite and
// PostgreSQL (each test once per engine); the store's own behaviour is
// internal/storetest's.

type events struct {
	mu  sync.Mutex
	got []berth.Event
}

func (p *events) Publish(_ context.Context, e berth.Event) {
	p.mu.Lock()
	p.got = append(p.got, e)
	p.mu.Unlock()
}

// countingStore counts the writes of pull times.
type countingStore struct {
	berth.MetadataStore
	pullWrites int
}

func (s *countingStore) RecordPulls(ctx context.Context, p []berth.ManifestPull) error {
	s.pullWrites++
	return s.MetadataStore.RecordPulls(ctx, p)
}

// engines runs test once on SQLite and once on PostgreSQL.
func engines(t *testing.T, test func(t *testing.T, open func(t *testing.T) berth.MetadataStore)) {
	t.Run("sqlite", func(t *testing.T) {
		test(t, func(t *testing.T) berth.MetadataStore {
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, func(t *testing.T) berth.MetadataStore {
			db, err := postgres.Open(t.Context(), pgtest.Schema(t, "berth_lifecycle"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

func setup(t *testing.T, open func(t *testing.T) berth.MetadataStore) (*lifecycle.Enforcer, *countingStore, *testclock.Clock, *events) {
	t.Helper()
	db := open(t)
	c := testclock.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	ev := &events{}
	st := &countingStore{MetadataStore: db}
	return &lifecycle.Enforcer{Store: st, Meta: db, Now: c.Now, Events: ev}, st, c, ev
}

func scope(t *testing.T, s string) berth.Scope {
	sc, err := berth.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func digest(s string) berth.Digest { return berth.DigestOf(berth.SHA256, []byte(s)) }

func push(t *testing.T, db berth.MetadataStore, repo, name, tag string, size int64) *berth.Manifest {
	t.Helper()
	layer := digest(name + "-layer")
	if err := db.LinkBlob(t.Context(), berth.BlobLink{Repository: repo, Digest: layer, Size: size, Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	content := []byte(`{"schemaVersion":2,"name":"` + name + `"}`)
	m := &berth.Manifest{Repository: repo, Digest: berth.DigestOf(berth.SHA256, content), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Content: content, References: []berth.Reference{{Kind: berth.ReferenceBlob, Digest: layer}}, Created: time.Unix(2, 0)}
	if err := db.PutManifest(t.Context(), m, tag); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImmutableTagCheck(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e, st, c, _ := setup(t, open)
		ctx := t.Context()
		old := push(t, st.MetadataStore, "team/app", "a", "v1", 10)
		must(t, st.PutImmutableRule(ctx, berth.ImmutableRule{Scope: scope(t, "team/*"), Tags: "v*", Created: c.Now()}))
		e.TagPushed(ctx, berth.TagPush{Repository: "team/app", Tag: "v1", Digest: old.Digest, Pushed: c.Now(), PushedBy: "ci-web"})

		_, err := e.CheckTag(ctx, "team/app", "v1", digest("other"))
		if !berth.IsCode(err, berth.CodeTagImmutable) || berth.AsError(err).Detail["digest"] != old.Digest.String() {
			t.Fatalf("moving v1: %v", err)
		}
		for _, c := range []struct {
			repo, tag string
			d         berth.Digest
		}{
			{"team/app", "v1", old.Digest},        // the same image again
			{"team/app", "v2", digest("other")},   // a new immutable tag
			{"team/app", "latest", digest("new")}, // not immutable
			{"other/app", "v1", digest("x")},      // outside the scope
		} {
			if _, err := e.CheckTag(ctx, c.repo, c.tag, c.d); err != nil {
				t.Errorf("%s:%s → %s: %v", c.repo, c.tag, c.d, err)
			}
		}
		if _, err := e.CheckTag(ctx, "team/app", "v1", ""); !berth.IsCode(err, berth.CodeTagImmutable) {
			t.Errorf("deleting v1: %v", err)
		}
		if err := e.CheckManifestDelete(ctx, "team/app", old.Digest); !berth.IsCode(err, berth.CodeTagImmutable) {
			t.Errorf("deleting the manifest v1 holds: %v", err)
		}
	})
}

func TestRulesAreCachedUntilChanged(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e, st, c, _ := setup(t, open)
		ctx := t.Context()
		push(t, st.MetadataStore, "team/app", "a", "v1", 10)
		if _, err := e.CheckTag(ctx, "team/app", "v1", digest("b")); err != nil {
			t.Fatal(err) // reads (and caches) no rules
		}
		must(t, st.PutImmutableRule(ctx, berth.ImmutableRule{Scope: scope(t, "team/*"), Tags: "v*", Created: c.Now()}))
		if _, err := e.CheckTag(ctx, "team/app", "v1", digest("b")); err != nil {
			t.Fatalf("a rule another replica added counted before RulesTTL: %v", err)
		}
		c.Advance(lifecycle.RulesTTL)
		if _, err := e.CheckTag(ctx, "team/app", "v1", digest("b")); !berth.IsCode(err, berth.CodeTagImmutable) {
			t.Fatalf("after RulesTTL: %v", err)
		}
		must(t, st.DeleteImmutableRule(ctx, scope(t, "team/*"), "v*"))
		e.Invalidate() // this process's own change counts at once
		if _, err := e.CheckTag(ctx, "team/app", "v1", digest("b")); err != nil {
			t.Fatalf("after Invalidate: %v", err)
		}
	})
}

func TestQuotaCountsSharedBlobsOnceAndWarns(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e, st, c, ev := setup(t, open)
		ctx := t.Context()
		m := push(t, st.MetadataStore, "team/a", "a", "v1", 700)
		must(t, st.PutQuota(ctx, berth.Quota{Scope: scope(t, "team/*"), MaxSize: 1000, MaxRepositories: 2, Updated: c.Now()}))

		// The layer team/a holds, mounted into team/b: adds nothing.
		if err := e.CheckQuota(ctx, "team/b", m.References[0].Digest, 700); err != nil {
			t.Fatalf("a blob the scope holds: %v", err)
		}
		// 300 more is exactly the limit; 301 is one byte over.
		if err := e.CheckQuota(ctx, "team/a", digest("new"), 301); !berth.IsCode(err, berth.CodeQuotaExceeded) {
			t.Fatalf("one byte over: %v", err)
		}
		if len(ev.got) != 0 {
			t.Fatalf("a refused push warned: %+v", ev.got)
		}
		if err := e.CheckQuota(ctx, "team/a", digest("new"), 300); err != nil {
			t.Fatalf("exactly at the limit: %v", err)
		}
		if len(ev.got) != 1 || ev.got[0].Type != berth.EventQuotaWarning {
			t.Fatalf("events %+v", ev.got)
		}
		var data berth.QuotaEventData
		if err := json.Unmarshal(ev.got[0].Data, &data); err != nil || data.Percent != 95 || data.UsageBytes != 1000 {
			t.Fatalf("warning %s: %v", ev.got[0].Data, err)
		}
		if err := e.CheckQuota(ctx, "team/a", digest("again"), 250); err != nil {
			t.Fatal(err)
		}
		if len(ev.got) != 1 {
			t.Fatalf("the same level warned twice: %+v", ev.got)
		}
		// A third repository is beyond --max-repositories 2 (team/a exists).
		push(t, st.MetadataStore, "team/b", "b", "", 0)
		if err := e.CheckQuota(ctx, "team/c", digest("c"), 0); !berth.IsCode(err, berth.CodeQuotaExceeded) {
			t.Fatalf("a third repository: %v", err)
		}
	})
}

func TestPullsAreBatched(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e, st, c, _ := setup(t, open)
		ctx := t.Context()
		m := push(t, st.MetadataStore, "app", "a", "v1", 1)
		for range 100 {
			e.Pulled("app", m.Digest)
			c.Advance(time.Second)
		}
		if st.pullWrites != 0 {
			t.Fatalf("%d writes before Flush", st.pullWrites)
		}
		must(t, e.Flush(ctx))
		must(t, e.Flush(ctx)) // nothing new: no write
		if st.pullWrites != 1 {
			t.Fatalf("%d writes for 100 pulls, want 1", st.pullWrites)
		}
		images, err := st.FindRetentionImages(ctx, "app")
		must(t, err)
		if want := c.Now().Add(-time.Second); len(images) != 1 || !images[0].LastPulled.Equal(want) {
			t.Fatalf("last pull %v, want %v", images[0].LastPulled, want)
		}
	})
}

// quotaOnTeam sets up an enforcer whose store holds team/a, pushed with a
// layer of used bytes, and q on team/*.
func quotaOnTeam(t *testing.T, open func(*testing.T) berth.MetadataStore, used int64, q berth.Quota) *lifecycle.Enforcer {
	t.Helper()
	e, st, c, _ := setup(t, open)
	push(t, st.MetadataStore, "team/a", "a", "v1", used)
	q.Scope, q.Updated = scope(t, "team/*"), c.Now()
	must(t, st.PutQuota(t.Context(), q))
	return e
}

// mustReserve reserves size bytes of digest(d) in repo, failing the test
// with why when the quota refuses; it returns the release.
func mustReserve(t *testing.T, e *lifecycle.Enforcer, repo, d string, size int64, why string) func() {
	t.Helper()
	release, err := e.ReserveQuota(t.Context(), repo, digest(d), size)
	if err != nil {
		t.Fatalf("%s: %v", why, err)
	}
	return release
}

// wantQuotaExceeded fails the test with why unless reserving size bytes of
// digest(d) in repo is refused with quota_exceeded.
func wantQuotaExceeded(t *testing.T, e *lifecycle.Enforcer, repo, d string, size int64, why string) {
	t.Helper()
	if release, err := e.ReserveQuota(t.Context(), repo, digest(d), size); !berth.IsCode(err, berth.CodeQuotaExceeded) {
		if err == nil {
			release()
		}
		t.Fatalf("%s: %v, want quota_exceeded", why, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetentionDuringConcurrentPushes: while one retention run deletes old
// images, other writers tag some of them and push indexes listing others.
// The rule keeps images tagged keep-*, so whether a push lands before the
// run reads the repository (the rule protects it) or after (the deletion's
// re-check sees it), every tag and index whose push succeeded must still
// find its image after the run.
func TestRetentionDuringConcurrentPushes(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		for round := range 5 {
			_, st, c, _ := setup(t, open)
			ctx := t.Context()
			const n = 40
			name := func(i int) string { return string(rune('A' + i)) }
			images := make([]*berth.Manifest, n)
			for i := range n {
				images[i] = push(t, st.MetadataStore, "app", "img"+name(i), "c"+name(i), 1)
				must(t, st.RecordTagPush(ctx, berth.TagPush{Repository: "app", Tag: "c" + name(i), Digest: images[i].Digest, Pushed: time.Unix(int64(100+i), 0)}))
			}
			must(t, st.PutRetentionRule(ctx, berth.RetentionRule{Scope: berth.RegistryScope, KeepLast: 2, KeepTags: "keep-*", Updated: c.Now()}))
			r := &berth.Retention{Rules: st, Meta: st.MetadataStore}

			var mu sync.Mutex
			needed := map[berth.Digest]string{} // image → the push that needs it
			started, done := make(chan struct{}, 2), make(chan struct{})
			pusher := func(first int, put func(i int) (string, error)) {
				for i := first; i < n/2; i += 2 { // the older half races; the rest is deleted for sure
					if why, err := put(i); err == nil {
						mu.Lock()
						needed[images[i].Digest] = why
						mu.Unlock()
					}
					if i == first {
						started <- struct{}{}
					}
					select {
					case <-done:
						return
					default:
					}
				}
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				pusher(0, func(i int) (string, error) {
					return "tag keep-" + name(i), st.PutManifest(ctx, images[i], "keep-"+name(i))
				})
			})
			wg.Go(func() {
				pusher(1, func(i int) (string, error) {
					content := []byte(`{"schemaVersion":2,"index":"` + name(i) + `"}`)
					idx := &berth.Manifest{Repository: "app", Digest: berth.DigestOf(berth.SHA256, content), MediaType: "application/vnd.oci.image.index.v1+json",
						Content: content, References: []berth.Reference{{Kind: berth.ReferenceManifest, Digest: images[i].Digest}}, Created: c.Now()}
					return "index keep-idx-" + name(i), st.PutManifest(ctx, idx, "keep-idx-"+name(i))
				})
			})
			<-started
			<-started
			deleted, err := r.Run(ctx, berth.Scope{}, c.Now(), false)
			close(done)
			wg.Wait()
			must(t, err)
			for d, why := range needed {
				if _, err := st.FindManifest(ctx, "app", d.String()); err != nil {
					t.Errorf("round %d: retention deleted %s, which the %s pushed during the run needs: %v", round, d, why, err)
				}
			}
			if len(deleted) == 0 {
				t.Fatalf("round %d: the run deleted nothing; the test proves nothing", round)
			}
		}
	})
}

// TestQuotaReservedUntilLinked: two commits racing into the last bytes of a
// quota cannot both pass: the first one's bytes count until it releases
// them, after which the quota is as the store says.
func TestQuotaReservedUntilLinked(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e := quotaOnTeam(t, open, 400, berth.Quota{MaxSize: 1000})

		release := mustReserve(t, e, "team/a", "first", 500, "the first commit")
		wantQuotaExceeded(t, e, "team/a", "second", 200, "a second commit past what the first reserved")
		release()
		release() // twice is harmless
		again := mustReserve(t, e, "team/a", "second", 200, "once the first let go")
		again()
	})
}

// TestQuotaReservesABlobOnce: commits of the same blob (two pushes sharing a
// layer) reserve its bytes once, as the usage will count them once, and
// keep them reserved until the last of them lets go.
func TestQuotaReservesABlobOnce(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e := quotaOnTeam(t, open, 400, berth.Quota{MaxSize: 1000})

		first := mustReserve(t, e, "team/a", "shared", 500, "the first commit of the blob")
		second := mustReserve(t, e, "team/a", "shared", 500, "a second commit of the same blob")
		first()
		wantQuotaExceeded(t, e, "team/a", "other", 200, "another blob while the shared one is still pending")
		second()
		other := mustReserve(t, e, "team/a", "other", 200, "once both let go")
		other()

		// A commit's size is what its upload holds, which only the commit
		// checks against the digest: a small claim of a digest does not let
		// a larger one of the same digest in unchecked, and whatever the
		// order they let go in, nothing stays reserved.
		claim := mustReserve(t, e, "team/a", "claimed", 10, "a 10 B commit")
		wantQuotaExceeded(t, e, "team/a", "claimed", 5000, "a 5000 B commit of a digest a 10 B commit claims")
		honest := mustReserve(t, e, "team/a", "claimed", 500, "a 500 B commit beside a 10 B claim of its digest")
		claim()
		honest()
		last := mustReserve(t, e, "team/a", "last", 600, "after every commit let go, 600 B of the 600 free")
		last()
	})
}

// TestQuotaReservesNewRepositories: commits creating repositories race for
// the last one a quota allows: the first reserves it, further commits into
// the same new repository pass, one into another new repository is refused
// until the first lets go.
func TestQuotaReservesNewRepositories(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) berth.MetadataStore) {
		e := quotaOnTeam(t, open, 10, berth.Quota{MaxRepositories: 2})

		first := mustReserve(t, e, "team/b", "b-config", 10, "the first commit into a new repository")
		second := mustReserve(t, e, "team/b", "b-layer", 10, "a second commit into the same new repository")
		wantQuotaExceeded(t, e, "team/c", "c-layer", 10, "a commit into a third repository while team/b is reserved")
		first()
		wantQuotaExceeded(t, e, "team/c", "c-layer", 10, "team/b still has a commit pending")
		second()
		third := mustReserve(t, e, "team/c", "c-layer", 10, "once team/b's commits let go")
		third()
	})
}
