package berth_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func digestOf(s string) berth.Digest { return berth.DigestOf(berth.SHA256, []byte(s)) }

// image is a tagged image pushed days ago (tags pushed then too).
func image(name string, now time.Time, days int, tags ...string) berth.RetentionImage {
	at := now.Add(-time.Duration(days) * 24 * time.Hour)
	im := berth.RetentionImage{Digest: digestOf(name), Size: 100, Created: at}
	for _, tag := range tags {
		im.Tags = append(im.Tags, berth.TagPush{Tag: tag, Digest: im.Digest, Pushed: at})
	}
	return im
}

func deleted(plan []berth.RetentionDeletion) map[berth.Digest]bool {
	out := map[berth.Digest]bool{}
	for _, d := range plan {
		out[d.Digest] = true
	}
	return out
}

func TestPlanRetentionKeepLast(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rule := berth.RetentionRule{Scope: mustScope(t, "team/*"), KeepLast: 2, KeepTags: "v*"}
	images := []berth.RetentionImage{
		image("a", now, 5, "c5"), image("b", now, 4, "c4"), image("c", now, 3, "c3"),
		image("d", now, 2, "c2"), image("e", now, 1, "c1"),
		image("release", now, 9, "v1.0"), // protected by --keep-tags
		image("untagged", now, 30),       // no --untagged-after: kept
	}
	plan := berth.PlanRetention(rule, "team/app", images, nil, now)
	got := deleted(plan)
	for _, name := range []string{"a", "b", "c"} {
		if !got[digestOf(name)] {
			t.Errorf("image %s should be deleted: %+v", name, plan)
		}
	}
	if len(got) != 3 {
		t.Fatalf("deleted %d images, want 3: %+v", len(got), plan)
	}
	// Oldest first, each with its tags, size, reason and rule.
	if plan[0].Digest != digestOf("a") || plan[0].Tags[0] != "c5" || plan[0].Size != 100 || plan[0].Reason == "" || plan[0].Rule == "" {
		t.Fatalf("first deletion %+v", plan[0])
	}

	// Immutable tags are never deleted by retention.
	imm := []berth.ImmutableRule{{Scope: mustScope(t, "registry"), Tags: "c5"}}
	if deleted(berth.PlanRetention(rule, "team/app", images, imm, now))[digestOf("a")] {
		t.Fatal("retention deleted an image holding an immutable tag")
	}
}

func TestPlanRetentionPulledUntaggedAndReferrers(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rule := berth.RetentionRule{Scope: mustScope(t, "registry"), KeepLast: 1, KeepPulledWithin: 7 * 24 * time.Hour, UntaggedAfter: 24 * time.Hour}
	newest := image("newest", now, 1, "n")
	pulled := image("pulled", now, 10, "p")
	pulled.LastPulled = now.Add(-2 * 24 * time.Hour)
	old := image("old", now, 20, "o")
	sig := image("sig-of-old", now, 20) // untagged referrer of old
	sig.Subject = old.Digest
	sigKept := image("sig-of-newest", now, 20) // untagged, older than a day, but its subject stays
	sigKept.Subject = newest.Digest
	index := image("index", now, 15, "i")
	child := image("child", now, 15) // untagged child of index
	index.Children = []berth.Digest{child.Digest}
	stray := image("stray", now, 3) // untagged, older than a day
	fresh := image("fresh", now, 0) // untagged, younger than a day

	images := []berth.RetentionImage{newest, pulled, old, sig, sigKept, index, child, stray, fresh}
	got := deleted(berth.PlanRetention(rule, "app", images, nil, now))
	want := map[berth.Digest]bool{old.Digest: true, sig.Digest: true, index.Digest: true, child.Digest: true, stray.Digest: true}
	for d := range want {
		if !got[d] {
			t.Errorf("%s should be deleted", d)
		}
	}
	for d := range got {
		if !want[d] {
			t.Errorf("%s should be kept", d)
		}
	}

	// A kept index keeps its child, however old and untagged.
	rule.KeepLast = 10
	if got := deleted(berth.PlanRetention(rule, "app", images, nil, now)); got[child.Digest] || got[index.Digest] {
		t.Fatal("retention deleted a kept index or its child")
	}
}

func TestRetentionRuleForMostSpecific(t *testing.T) {
	rules := []berth.RetentionRule{
		{Scope: mustScope(t, "registry"), KeepLast: 100},
		{Scope: mustScope(t, "team/*"), KeepLast: 20},
		{Scope: mustScope(t, "team/web/*"), KeepLast: 10},
		{Scope: mustScope(t, "team/web/api"), KeepLast: 5},
	}
	for repo, want := range map[string]int{"other": 100, "team/x": 20, "team/web/ui": 10, "team/web/api": 5} {
		r, ok := berth.RetentionRuleFor(rules, repo)
		if !ok || r.KeepLast != want {
			t.Errorf("%s: rule keep-last %d, want %d", repo, r.KeepLast, want)
		}
	}
	if _, ok := berth.RetentionRuleFor(rules[1:], "other"); ok {
		t.Error("a rule on team/* covers other")
	}
}

// TestQuotasFor: every quota whose scope covers the repository binds a
// push into it, not only the most specific one.
func TestQuotasFor(t *testing.T) {
	quotas := []berth.Quota{
		{Scope: mustScope(t, "registry"), MaxSize: 100},
		{Scope: mustScope(t, "team/*"), MaxSize: 20},
		{Scope: mustScope(t, "team/web/api"), MaxSize: 5},
		{Scope: mustScope(t, "other/*"), MaxSize: 7},
	}
	for repo, want := range map[string][]int64{"team/web/api": {100, 20, 5}, "team/x": {100, 20}, "lone": {100}} {
		var got []int64
		for _, q := range berth.QuotasFor(quotas, repo) {
			got = append(got, q.MaxSize)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: quotas %v, want %v", repo, got, want)
		}
	}
	if got := berth.QuotasFor(quotas[1:3], "lone"); len(got) != 0 {
		t.Errorf("quotas on team/ cover lone: %v", got)
	}
}

func TestQuotaEdges(t *testing.T) {
	q := berth.Quota{Scope: mustScope(t, "team/*"), MaxSize: 1000, MaxRepositories: 2}
	use := berth.QuotaUsage{Bytes: 900, Repositories: 1}
	if q.Exceeds(use, 100, false) {
		t.Error("exactly at the limit is within it")
	}
	if !q.Exceeds(use, 101, false) {
		t.Error("one byte over is beyond it")
	}
	if q.Exceeds(use, 0, true) || !q.Exceeds(berth.QuotaUsage{Repositories: 2}, 0, true) {
		t.Error("repository bound")
	}
	err := berth.QuotaExceeded(q, use, "team/app", 101, false)
	if !berth.IsCode(err, berth.CodeQuotaExceeded) || !strings.Contains(err.Hint, "berth quota set 'team/*' --max-size 1MiB") {
		t.Fatalf("%v", err)
	}
	// A repository too many: the hint raises that bound, the facts are counts.
	err = berth.QuotaExceeded(q, berth.QuotaUsage{Bytes: 10, Repositories: 2}, "team/third", 10, true)
	if !strings.Contains(err.Hint, "berth quota set 'team/*' --max-repositories 3") || err.Detail["limit_repositories"] != 2 || err.Detail["repositories"] != 2 {
		t.Fatalf("%v %v", err, err.Detail)
	}
	// The sizes a hint names parse back, at least the need.
	for _, n := range []int64{1, 1 << 20, 1<<20 + 1, 5 << 30, 5<<30 + 1} {
		arg := berth.QuotaExceeded(berth.Quota{Scope: q.Scope, MaxSize: 1}, berth.QuotaUsage{}, "team/app", n, false).Hint
		arg = arg[strings.LastIndex(arg, " ")+1:]
		if got, err := berth.ParseByteSize(arg); err != nil || got < n {
			t.Errorf("hint size %q for %d bytes: %d, %v", arg, n, got, err)
		}
	}
	if err := berth.ValidateQuota(berth.Quota{Scope: q.Scope}); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("a quota bounding nothing: %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"50GiB": 50 << 30, "512MiB": 512 << 20, "10GB": 10e9, "1024": 1024, "1 KiB": 1024, "10MB": 10e6, "10M": 10 << 20, "2G": 2 << 30} {
		got, err := berth.ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "GiB", "1.5GiB", "99999999999TiB"} {
		if _, err := berth.ParseByteSize(in); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestImmutableRules(t *testing.T) {
	rules := []berth.ImmutableRule{{Scope: mustScope(t, "team/*"), Tags: "v*"}}
	if _, ok := berth.ImmutableRuleFor(rules, "team/app", "v1.0"); !ok {
		t.Error("v1.0 in team/app is immutable")
	}
	if _, ok := berth.ImmutableRuleFor(rules, "team/app", "latest"); ok {
		t.Error("latest is not")
	}
	if _, ok := berth.ImmutableRuleFor(rules, "other/app", "v1.0"); ok {
		t.Error("other/app is outside the scope")
	}
	for _, p := range []string{"", "a b", "-x*"} {
		if err := berth.ValidateImmutableRule(berth.ImmutableRule{Scope: rules[0].Scope, Tags: p}); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
	e := berth.TagImmutable(rules[0], "team/app", "v1.0", digestOf("x"), berth.TagPush{Digest: digestOf("x"), Pushed: time.Now(), PushedBy: "ci"}, "move")
	if e.Code != berth.CodeTagImmutable || e.Detail["digest"] != digestOf("x").String() || !strings.Contains(e.Hint, "push under a new tag") {
		t.Fatalf("%+v", e)
	}
	// A delete is not told to push under a new tag.
	e = berth.TagImmutable(rules[0], "team/app", "v1.0", digestOf("x"), berth.TagPush{}, "delete")
	if strings.Contains(e.Hint, "push") || !strings.Contains(e.Hint, "berth immutable remove") {
		t.Fatalf("delete hint: %s", e.Hint)
	}
}

// TestPlanRetentionIndexWithMissingChild: an index the pull-through cache
// stored lists children it does not hold. Deleting it deletes the child it
// holds, after it, and plans nothing for the missing one; a kept index
// keeps the child it holds.
func TestPlanRetentionIndexWithMissingChild(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rule := berth.RetentionRule{Scope: mustScope(t, "hub/*"), KeepLast: 1}
	newest := image("newest", now, 1, "2")
	index := image("index", now, 10, "1")
	held := image("arm64", now, 10)
	index.Children = []berth.Digest{digestOf("amd64"), held.Digest}
	images := []berth.RetentionImage{newest, index, held}

	plan := berth.PlanRetention(rule, "hub/library/alpine", images, nil, now)
	if len(plan) != 2 || plan[0].Digest != index.Digest || plan[1].Digest != held.Digest {
		t.Fatalf("plan %+v, want the index, then the child it holds", plan)
	}
	rule.KeepLast = 2
	if plan := berth.PlanRetention(rule, "hub/library/alpine", images, nil, now); len(plan) != 0 {
		t.Fatalf("plan %+v, want nothing: the kept index keeps its child", plan)
	}
}

// A quota change keeps the bound it does not give, and 0 removes one.
func TestQuotaWith(t *testing.T) {
	q := berth.Quota{Scope: mustScope(t, "team/*"), MaxSize: 100, MaxRepositories: 3}
	size, none := int64(200), 0
	if got := q.With(berth.QuotaChange{MaxSize: &size}); got.MaxSize != 200 || got.MaxRepositories != 3 {
		t.Errorf("size alone: %+v", got)
	}
	if got := q.With(berth.QuotaChange{MaxRepositories: &none}); got.MaxSize != 100 || got.MaxRepositories != 0 {
		t.Errorf("repositories removed: %+v", got)
	}
	if got := q.With(berth.QuotaChange{}); got != q {
		t.Errorf("no change: %+v", got)
	}
}
