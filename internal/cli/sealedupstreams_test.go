package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
)

// TestOneUnsealableUpstreamLeavesTheOthers: an upstream whose credential was
// sealed with a key this server does not have is listed without it; the
// others keep theirs, so the cache goes on for them.
func TestOneUnsealableUpstreamLeavesTheOthers(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealerIn := func(dir string) sealedUpstreams {
		t.Helper()
		f, err := folderSealer(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		return sealedUpstreams{store: db, folder: f}
	}
	first, second := sealerIn(t.TempDir()), sealerIn(t.TempDir())
	now := time.Now()
	for _, c := range []struct {
		s    sealedUpstreams
		name string
	}{{first, "hub"}, {second, "ghcr"}} {
		u, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: c.name, URL: "https://" + c.name + ".example", Namespace: c.name,
			Username: "bot", Password: berth.UpstreamPasswordOf("pw-" + c.name)}, now)
		if err == nil {
			err = c.s.CreateUpstream(t.Context(), u)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	us, err := second.FindUpstreams(t.Context())
	if err != nil || len(us) != 2 {
		t.Fatalf("FindUpstreams with one credential unsealable: %v %+v", err, us)
	}
	for _, u := range us {
		switch {
		case u.Name == "ghcr" && u.Password.Reveal() != "pw-ghcr":
			t.Errorf("ghcr lost its credential")
		case u.Name == "hub" && !u.Password.IsZero():
			t.Errorf("hub's credential, sealed with another key, was not dropped")
		}
	}
}
