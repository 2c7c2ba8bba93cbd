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
