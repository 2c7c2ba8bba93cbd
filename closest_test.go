package berth_test

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth"
)

func TestClosestNames(t *testing.T) {
	repos := []string{"team/app", "team/api", "team/web", "other/app", "taem/app-old-and-long"}
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"taem/app", []string{"team/app", "team/api"}},      // a swap, then a swap and a substitution
		{"team/ap", []string{"team/api", "team/app"}},       // one insertion each
		{"team/app", []string{"team/api", "other/app"}[:1]}, // never itself
		{"zzz/qqq", []string{}},
	} {
		if got := berth.ClosestNames(tt.name, repos, 2); !slices.Equal(got, tt.want) {
			t.Errorf("ClosestNames(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "abc", 0}, {"kitten", "sitting", 3},
		{"secret_expird", "secret_expired", 1}, {"role_mising", "role_missing", 1},
		{"taem/app", "team/app", 1}, // a swap of neighbours is one edit
	} {
		if d := berth.EditDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
		if d := berth.EditDistance(tt.b, tt.a); d != tt.d {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tt.b, tt.a, d, tt.d)
		}
	}
}
