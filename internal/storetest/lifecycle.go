package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// The LifecycleStore tests, as the contract in lifecycle.go of package berth
// states it.

var lifecycleTests = []test{
	{"RulesRoundTrip", testLifecycleRules},
	{"QuotaUsageCountsBlobsOncePerScope", testQuotaUsage},
	{"RetentionImages", testRetentionImages},
	{"DeleteImageIfUnchanged", testDeleteImageIfUnchanged},
	{"PullsKeepTheLatest", testRecordPulls},
	{"PutManifestKeepingTag", testPutManifestKeepingTag},
	{"CachedIndexWithMissingChild", testRetentionCachedIndex},
}

// testRetentionCachedIndex: an index the cache stored before all its
// children lists them all to retention; each child held or stored later is
// kept while the index stays, and the index itself deletes as any image.
func testRetentionCachedIndex(t *testing.T, s berth.MetadataStore) {
	amd64 := pushImage(t, s, "hub/app", "amd64", "", at(0), digest("layer-amd64"))
	arm64 := newManifest("hub/app", "arm64", at(0), blobRef(digest("layer-arm64")))
	index := newIndex("hub/app", "index", at(1), amd64.Digest, arm64.Digest)
	must(t, s.PutCachedManifest(ctx(t), index, "latest"))

	images, err := s.FindRetentionImages(ctx(t), "hub/app")
	must(t, err)
	if len(images) != 2 {
		t.Fatalf("%d images, want the index and the child held: %+v", len(images), images)
	}
	for _, im := range images {
		if im.Digest != index.Digest {
			continue
		}
		if !slices.Equal(im.Children, []berth.Digest{amd64.Digest, arm64.Digest}) {
			t.Errorf("the index's children %v, want both, the missing one too", im.Children)
		}
		if im.Size != int64(len(index.Content)) {
			t.Errorf("the index's size %d, want its own %d bytes", im.Size, len(index.Content))
		}
	}
	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "hub/app", amd64.Digest, nil); err != nil || ok {
		t.Fatalf("deleted the child held while its index stays: %v %v", ok, err)
	}
	link(t, s, "hub/app", digest("layer-arm64"), at(2))
	must(t, s.PutCachedManifest(ctx(t), arm64, ""))
	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "hub/app", arm64.Digest, nil); err != nil || ok {
		t.Fatalf("deleted the child stored later while its index stays: %v %v", ok, err)
	}

	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "hub/app", index.Digest, []string{"latest"}); err != nil || !ok {
		t.Fatalf("the index was not deleted: %v %v", ok, err)
	}
	for _, d := range []berth.Digest{amd64.Digest, arm64.Digest} {
		if ok, err := s.DeleteImageIfUnchanged(ctx(t), "hub/app", d, nil); err != nil || !ok {
			t.Fatalf("child %s not deleted once its index is gone: %v %v", d.Short(), ok, err)
		}
	}
	images, err = s.FindRetentionImages(ctx(t), "hub/app")
	must(t, err)
	if len(images) != 0 {
		t.Errorf("images left: %+v", images)
	}
}

func testPutManifestKeepingTag(t *testing.T, s berth.MetadataStore) {
	link(t, s, "app", digest("layer"), at(1))
	a := newManifest("app", "a", at(2), blobRef(digest("layer")))
	b := newManifest("app", "b", at(3), blobRef(digest("layer")))
	must(t, s.PutManifestKeepingTag(ctx(t), a, "v1")) // a new tag
	must(t, s.PutManifestKeepingTag(ctx(t), a, "v1")) // the same manifest again
	err := s.PutManifestKeepingTag(ctx(t), b, "v1")
	wantCode(t, "moving a kept tag", err, berth.CodeTagImmutable)
	if d := berth.AsError(err).Detail["digest"]; d != a.Digest.String() {
		t.Errorf("the refusal names %v, want the digest the tag holds, %s", d, a.Digest)
	}
	got, err := s.FindManifest(ctx(t), "app", "v1")
	must(t, err)
	if got.Digest != a.Digest {
		t.Fatalf("v1 moved to %s", got.Digest)
	}
	_, err = s.FindManifest(ctx(t), "app", b.Digest.String())
	wantCode(t, "the refused manifest", err, berth.CodeManifestUnknown)
}

func scopeOf(t *testing.T, s string) berth.Scope {
	t.Helper()
	sc, err := berth.ParseScope(s)
	must(t, err)
	return sc
}

func testLifecycleRules(t *testing.T, s berth.MetadataStore) {
	// Empty lists are empty, not nil: the API shows them as [], not null.
	if r, err := s.FindImmutableRules(ctx(t)); err != nil || r == nil {
		t.Fatalf("FindImmutableRules of a new store = %#v, %v", r, err)
	}
	if r, err := s.FindRetentionRules(ctx(t)); err != nil || r == nil {
		t.Fatalf("FindRetentionRules of a new store = %#v, %v", r, err)
	}
	if q, err := s.FindQuotas(ctx(t)); err != nil || q == nil {
		t.Fatalf("FindQuotas of a new store = %#v, %v", q, err)
	}
	team := scopeOf(t, "team/*")
	imm := berth.ImmutableRule{Scope: team, Tags: "v*", Created: at(1), CreatedBy: "admin"}
	must(t, s.PutImmutableRule(ctx(t), imm))
	wantCode(t, "the same rule again", s.PutImmutableRule(ctx(t), imm), berth.CodeConflict)
	must(t, s.PutImmutableRule(ctx(t), berth.ImmutableRule{Scope: berth.RegistryScope, Tags: "release-*", Created: at(2)}))
	rules, err := s.FindImmutableRules(ctx(t))
	must(t, err)
	if len(rules) != 2 || rules[0].Scope != berth.RegistryScope || rules[1] != imm {
		t.Fatalf("immutable rules %+v", rules)
	}
	must(t, s.DeleteImmutableRule(ctx(t), team, "v*"))
	wantCode(t, "deleting it twice", s.DeleteImmutableRule(ctx(t), team, "v*"), berth.CodeNotFound)

	r := berth.RetentionRule{Scope: team, KeepLast: 5, Tags: "c-*", KeepTags: "v*", KeepPulledWithin: 30 * 24 * time.Hour,
		UntaggedAfter: 7 * 24 * time.Hour, Updated: at(3), UpdatedBy: "admin"}
	must(t, s.PutRetentionRule(ctx(t), r))
	r.KeepLast, r.Updated = 9, at(4)
	must(t, s.PutRetentionRule(ctx(t), r)) // replaces
	got, err := s.FindRetentionRules(ctx(t))
	must(t, err)
	if len(got) != 1 || got[0] != r {
		t.Fatalf("retention rules %+v, want %+v", got, r)
	}
	must(t, s.DeleteRetentionRule(ctx(t), team))
	wantCode(t, "deleting it twice", s.DeleteRetentionRule(ctx(t), team), berth.CodeNotFound)

	q := berth.Quota{Scope: team, MaxSize: 50 << 30, MaxRepositories: 10, Updated: at(5), UpdatedBy: "admin"}
	must(t, s.PutQuota(ctx(t), q))
	q.MaxSize = 60 << 30
	must(t, s.PutQuota(ctx(t), q))
	qs, err := s.FindQuotas(ctx(t))
	must(t, err)
	if len(qs) != 1 || qs[0] != q {
		t.Fatalf("quotas %+v, want %+v", qs, q)
	}
	must(t, s.DeleteQuota(ctx(t), team))
	wantCode(t, "deleting it twice", s.DeleteQuota(ctx(t), team), berth.CodeNotFound)
}

func testQuotaUsage(t *testing.T, s berth.MetadataStore) {
	shared, own := digest("shared"), digest("own")
	link(t, s, "team/a", shared, at(1))
	link(t, s, "team/b", shared, at(1)) // the same blob in two repositories
	link(t, s, "team/b", own, at(1))
	link(t, s, "team0", own, at(1))            // sorts right after "team/": outside team/*
	link(t, s, "team_x/c", digest("x"), at(1)) // '_' is not a wildcard here
	for scope, want := range map[string]berth.QuotaUsage{
		"team/*":   {Bytes: 84, Repositories: 2},
		"team/b":   {Bytes: 84, Repositories: 1},
		"registry": {Bytes: 126, Repositories: 4},
		"other/*":  {},
	} {
		got, err := s.QuotaUsage(ctx(t), scopeOf(t, scope))
		must(t, err)
		if got != want {
			t.Errorf("usage of %s: %+v, want %+v", scope, got, want)
		}
	}
	for _, c := range []struct {
		scope string
		d     berth.Digest
		want  bool
	}{{"team/*", shared, true}, {"team/a", own, false}, {"team/*", digest("x"), false}, {"registry", digest("x"), true}} {
		got, err := s.ScopeHoldsBlob(ctx(t), scopeOf(t, c.scope), c.d)
		must(t, err)
		if got != c.want {
			t.Errorf("%s holds %s: %v, want %v", c.scope, c.d, got, c.want)
		}
	}
}

func testRetentionImages(t *testing.T, s berth.MetadataStore) {
	old := pushImage(t, s, "app", "old", "v1", at(10), digest("layer1"))
	newer := pushImage(t, s, "app", "new", "v2", at(20), digest("layer2"))
	must(t, s.PutManifest(ctx(t), newer, "latest"))
	must(t, s.RecordTagPush(ctx(t), berth.TagPush{Repository: "app", Tag: "latest", Digest: newer.Digest, Pushed: at(30), PushedBy: "ci"}))
	// A record of a push to another digest is not this tag's push.
	must(t, s.RecordTagPush(ctx(t), berth.TagPush{Repository: "app", Tag: "v1", Digest: newer.Digest, Pushed: at(40), PushedBy: "ci"}))
	index := newManifest("app", "index", at(50), manifestRef(old.Digest))
	must(t, s.PutManifest(ctx(t), index, ""))
	must(t, s.RecordPulls(ctx(t), []berth.ManifestPull{{Repository: "app", Digest: old.Digest, Time: at(60)}}))

	images, err := s.FindRetentionImages(ctx(t), "app")
	must(t, err)
	if len(images) != 3 {
		t.Fatalf("%d images, want 3: %+v", len(images), images)
	}
	byDigest := map[berth.Digest]berth.RetentionImage{}
	for _, im := range images {
		byDigest[im.Digest] = im
	}
	o, n, i := byDigest[old.Digest], byDigest[newer.Digest], byDigest[index.Digest]
	if o.Size != int64(len(old.Content))+42 || len(o.Tags) != 1 || o.Tags[0].Tag != "v1" {
		t.Errorf("old image %+v", o)
	}
	wantTime(t, "v1 pushed (no matching record: the manifest's time)", o.Tags[0].Pushed, at(10))
	wantTime(t, "old pulled", o.LastPulled, at(60))
	if len(n.Tags) != 2 || n.Tags[0].Tag != "latest" || n.Tags[0].PushedBy != "ci" {
		t.Fatalf("new image tags %+v", n.Tags)
	}
	wantTime(t, "latest pushed", n.Tags[0].Pushed, at(30))
	if !n.LastPulled.IsZero() || len(i.Tags) != 0 || !slices.Equal(i.Children, []berth.Digest{old.Digest}) {
		t.Errorf("new %+v, index %+v", n, i)
	}
	none, err := s.FindRetentionImages(ctx(t), "nothing")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("images of a missing repository: %+v", none)
	}

	p, err := s.FindTagPush(ctx(t), "app", "latest")
	must(t, err)
	if p.Digest != newer.Digest || p.PushedBy != "ci" {
		t.Errorf("tag push %+v", p)
	}
	_, err = s.FindTagPush(ctx(t), "app", "never")
	wantCode(t, "an unrecorded tag", err, berth.CodeNotFound)
}

func testDeleteImageIfUnchanged(t *testing.T, s berth.MetadataStore) {
	m := pushImage(t, s, "app", "m", "v1", at(10), digest("layer"))
	// Tagged since the plan: kept.
	must(t, s.PutManifest(ctx(t), m, "v2"))
	ok, err := s.DeleteImageIfUnchanged(ctx(t), "app", m.Digest, []string{"v1"})
	must(t, err)
	if ok {
		t.Fatal("deleted an image tagged since the plan")
	}
	// Listed by an index since the plan: kept.
	index := newManifest("app", "index", at(20), manifestRef(m.Digest))
	must(t, s.PutManifest(ctx(t), index, ""))
	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "app", m.Digest, []string{"v2", "v1"}); err != nil || ok {
		t.Fatalf("deleted an image an index lists: %v %v", ok, err)
	}
	must(t, s.DeleteManifest(ctx(t), "app", index.Digest))
	// Unchanged: deleted, with its tags.
	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "app", m.Digest, []string{"v2", "v1"}); err != nil || !ok {
		t.Fatalf("unchanged image not deleted: %v %v", ok, err)
	}
	_, err = s.FindManifest(ctx(t), "app", "v1")
	wantCode(t, "its tag", err, berth.CodeManifestUnknown)
	// Gone already: not an error, not deleted.
	if ok, err := s.DeleteImageIfUnchanged(ctx(t), "app", m.Digest, nil); err != nil || ok {
		t.Fatalf("deleting a missing image: %v %v", ok, err)
	}
}

func testRecordPulls(t *testing.T, s berth.MetadataStore) {
	m := pushImage(t, s, "app", "m", "", at(1))
	must(t, s.RecordPulls(ctx(t), []berth.ManifestPull{{Repository: "app", Digest: m.Digest, Time: at(20)}}))
	must(t, s.RecordPulls(ctx(t), []berth.ManifestPull{{Repository: "app", Digest: m.Digest, Time: at(10)}})) // older: ignored
	must(t, s.RecordPulls(ctx(t), nil))
	images, err := s.FindRetentionImages(ctx(t), "app")
	must(t, err)
	if len(images) != 1 {
		t.Fatalf("images %+v", images)
	}
	wantTime(t, "last pull", images[0].LastPulled, at(20))
}
