package berth_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestPlanCacheEviction(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) berth.Digest { return berth.DigestOf("", []byte(s)) }
	images := map[string][]berth.RetentionImage{
		"hub/library/alpine": {
			{Digest: d("old"), Size: 100, Created: t0, Tags: []berth.TagPush{{Tag: "3.19"}}},             // fetched first, never pulled since
			{Digest: d("new"), Size: 100, Created: t0.Add(time.Hour), LastPulled: t0.Add(5 * time.Hour)}, // pulled last
		},
		"hub/library/multi": {
			// An index pulled at 2h, its two platform manifests with it.
			{Digest: d("index"), Size: 10, Created: t0, LastPulled: t0.Add(2 * time.Hour), Children: []berth.Digest{d("amd64"), d("arm64")}, Tags: []berth.TagPush{{Tag: "1"}}},
			{Digest: d("amd64"), Size: 50, Created: t0},
			{Digest: d("arm64"), Size: 50, Created: t0},
		},
	}
	if got := berth.PlanCacheEviction(images, 0); len(got) != 0 {
		t.Errorf("nothing to free: %v", got)
	}
	got := berth.PlanCacheEviction(images, 100)
	if len(got) != 1 || got[0].Digest != d("old") || got[0].Tags[0] != "3.19" {
		t.Fatalf("free 100: %+v, want the image fetched first and not pulled since", got)
	}
	got = berth.PlanCacheEviction(images, 150)
	want := []berth.Digest{d("old"), d("index"), d("amd64"), d("arm64")}
	if len(got) != len(want) {
		t.Fatalf("free 150: %+v", got)
	}
	for i, e := range got {
		if e.Digest != want[i] {
			t.Errorf("eviction %d is %s, want %s (an index before its manifests, least recently used first)", i, e.Digest.Short(), want[i].Short())
		}
	}
	if got := berth.PlanCacheEviction(images, 1<<30); len(got) != 5 {
		t.Errorf("free everything: %d evictions, want 5", len(got))
	}
}

// TestPlanCacheEvictionIndexWithMissingChild: an index stored with one of
// its children goes with that one; the child never pulled is nothing to
// evict.
func TestPlanCacheEvictionIndexWithMissingChild(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) berth.Digest { return berth.DigestOf("", []byte(s)) }
	images := map[string][]berth.RetentionImage{
		"hub/library/multi": {
			{Digest: d("index"), Size: 10, Created: t0, Children: []berth.Digest{d("amd64"), d("arm64")}, Tags: []berth.TagPush{{Tag: "1"}}},
			{Digest: d("arm64"), Size: 50, Created: t0},
		},
	}
	got := berth.PlanCacheEviction(images, 1)
	if len(got) != 2 || got[0].Digest != d("index") || got[1].Digest != d("arm64") {
		t.Fatalf("free 1: %+v, want the index, then the child it holds", got)
	}
}
