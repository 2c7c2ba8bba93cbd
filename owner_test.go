package berth_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestOwnerAccessWarning(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tt := range []struct {
		until time.Time
		want  time.Duration
	}{
		{time.Time{}, -1},
		{now.Add(-time.Second), -1},
		{now, -1},
		{now.Add(90 * day), 0},
		{now.Add(30*day + time.Second), 0},
		{now.Add(30 * day), 30 * day},
		{now.Add(8 * day), 30 * day},
		{now.Add(7 * day), 7 * day},
		{now.Add(25 * time.Hour), 7 * day},
		{now.Add(day), day},
		{now.Add(time.Second), day},
	} {
		if got := (berth.OwnerAccess{Until: tt.until}).Warning(now); got != tt.want {
			t.Errorf("Warning with %s left = %s, want %s", tt.until.Sub(now), got, tt.want)
		}
	}
}
