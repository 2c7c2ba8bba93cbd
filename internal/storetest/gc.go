package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

// unreferenced returns "repo@digest" of every unreferenced link before the
// cutoff at(before), sorted: the contract does not order them.
func unreferenced(t *testing.T, s berth.MetadataStore, before int) []string {
	t.Helper()
	links, err := s.FindUnreferencedBlobLinks(ctx(t), at(before))
	must(t, err)
	var out []string
	for _, l := range links {
		out = append(out, l.Repository+"@"+string(l.Digest))
	}
	slices.Sort(out)
	return out
}

func key(repo string, d berth.Digest) string { return repo + "@" + string(d) }

func wantInUse(t *testing.T, s berth.MetadataStore, d berth.Digest, want bool, why string) {
	t.Helper()
	got, err := s.BlobInUse(ctx(t), d)
	must(t, err)
	if got != want {
		t.Errorf("BlobInUse(%s) %s = %v, want %v", d.Short(), why, got, want)
	}
}

var gcTests = []test{
	{"FindUnreferencedBlobLinks", func(t *testing.T, s berth.MetadataStore) {
		used, loose, fresh := digest("used"), digest("loose"), digest("fresh")
		pushImage(t, s, "team/app", "one", "v1", at(0), used)
		link(t, s, "team/app", loose, at(0))
		link(t, s, "team/app", fresh, at(100))
		// Referenced in team/app, not in team/web: team/web's link is loose.
		link(t, s, "team/web", used, at(0))

		want := []string{key("team/app", loose), key("team/web", used)}
		slices.Sort(want)
		wantStrings(t, "unreferenced before 50", unreferenced(t, s, 50), want)
		// Created exactly at the cutoff is not before it.
		wantStrings(t, "unreferenced before 100", unreferenced(t, s, 100), want)
		want = append(want, key("team/app", fresh))
		slices.Sort(want)
		wantStrings(t, "unreferenced before 101", unreferenced(t, s, 101), want)
		wantStrings(t, "unreferenced before 0", unreferenced(t, s, 0), nil)

		links, err := s.FindUnreferencedBlobLinks(ctx(t), at(101))
		must(t, err)
		for _, l := range links {
			if l.Repository == "team/app" && l.Digest == fresh {
				if l.Size != 42 {
					t.Errorf("Size = %d, want 42", l.Size)
				}
				wantTime(t, "Created", l.Created, at(100))
			}
		}
	}},
	{"DeletingManifestUnreferencesItsBlobs", func(t *testing.T, s berth.MetadataStore) {
		shared, own := digest("shared"), digest("own")
		m := pushImage(t, s, "team/app", "one", "v1", at(0), shared, own)
		pushImage(t, s, "team/app", "two", "v2", at(0), shared)
		wantStrings(t, "unreferenced while both manifests exist", unreferenced(t, s, 50), nil)
		must(t, s.DeleteManifest(ctx(t), "team/app", m.Digest))
		wantStrings(t, "unreferenced after deleting one", unreferenced(t, s, 50), []string{key("team/app", own)})
	}},
	{"DeleteBlobLinkIfUnreferenced", func(t *testing.T, s berth.MetadataStore) {
		used, loose, fresh := digest("used"), digest("loose"), digest("fresh")
		pushImage(t, s, "team/app", "one", "v1", at(0), used)
		link(t, s, "team/app", loose, at(0))
		link(t, s, "team/app", fresh, at(100))

		deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), "team/app", loose, at(50))
		must(t, err)
		if !deleted {
			t.Errorf("an old unreferenced link was not deleted")
		}
		_, err = s.FindBlobLink(ctx(t), "team/app", loose)
		wantCode(t, "FindBlobLink after deleting it", err, berth.CodeBlobUnknown)

		for _, tc := range []struct {
			repo   string
			d      berth.Digest
			before int
			why    string
		}{
			{"team/app", loose, 50, "already deleted"},
			{"team/app", used, 50, "referenced"},
			{"team/app", fresh, 50, "newer than the cutoff"},
			{"team/app", fresh, 100, "created exactly at the cutoff"},
			{"team/app", digest("never"), 50, "never linked"},
			{"team/none", loose, 50, "in a missing repository"},
		} {
			deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), tc.repo, tc.d, at(tc.before))
			must(t, err)
			if deleted {
				t.Errorf("DeleteBlobLinkIfUnreferenced deleted a link %s", tc.why)
			}
		}
		for _, d := range []berth.Digest{used, fresh} {
			if _, err := s.FindBlobLink(ctx(t), "team/app", d); err != nil {
				t.Errorf("a refused delete removed link %s: %v", d.Short(), err)
			}
		}
	}},
	{"DeleteRefusesWhenPushedMeanwhile", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		link(t, s, "team/app", d, at(0))
		wantStrings(t, "candidates", unreferenced(t, s, 50), []string{key("team/app", d)})

		// Between GC's scan and its delete, a push references the blob.
		must(t, s.PutManifest(ctx(t), newManifest("team/app", "one", at(60), blobRef(d)), "v1"))
		deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), "team/app", d, at(50))
		must(t, err)
		if deleted {
			t.Errorf("GC deleted a link a manifest pushed meanwhile references")
		}
		if _, err := s.FindBlobLink(ctx(t), "team/app", d); err != nil {
			t.Errorf("the link is gone: %v", err)
		}
	}},
	{"DeleteRefusesWhenRelinkedMeanwhile", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		link(t, s, "team/app", d, at(0))
		wantStrings(t, "candidates", unreferenced(t, s, 50), []string{key("team/app", d)})

		// Between GC's scan and its delete, an upload links the blob again.
		link(t, s, "team/app", d, at(60))
		deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), "team/app", d, at(50))
		must(t, err)
		if deleted {
			t.Errorf("GC deleted a link refreshed after its cutoff")
		}
	}},
	{"CachedIndexWithMissingChild", func(t *testing.T, s berth.MetadataStore) {
		// An index the cache stored with one of its two children: the child
		// held keeps its blobs; the one missing keeps nothing (a link that
		// happens to have its digest is no reference to a blob).
		amd64 := pushImage(t, s, "hub/app", "amd64", "", at(0), digest("config-amd64"), digest("layer-amd64"))
		arm64 := newManifest("hub/app", "arm64", at(0), blobRef(digest("layer-arm64")))
		must(t, s.PutCachedManifest(ctx(t), newIndex("hub/app", "index", at(0), amd64.Digest, arm64.Digest), "latest"))
		link(t, s, "hub/app", digest("loose"), at(0))
		link(t, s, "hub/app", digest("layer-arm64"), at(0)) // fetched, its manifest not stored yet
		wantStrings(t, "unreferenced", unreferenced(t, s, 50),
			[]string{key("hub/app", digest("layer-arm64")), key("hub/app", digest("loose"))})
		wantInUse(t, s, digest("layer-amd64"), true, "referenced by the child held")

		// The missing child stored later holds its blob from then on.
		must(t, s.PutCachedManifest(ctx(t), arm64, ""))
		wantStrings(t, "unreferenced once the child is in", unreferenced(t, s, 50), []string{key("hub/app", digest("loose"))})
		deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), "hub/app", digest("layer-arm64"), at(50))
		must(t, err)
		if deleted {
			t.Error("GC deleted the link of a blob of the child stored later")
		}
	}},
	{"BlobInUse", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		wantInUse(t, s, d, false, "in an empty store")

		link(t, s, "team/app", d, at(0))
		wantInUse(t, s, d, true, "when linked")
		wantInUse(t, s, digest("other"), false, "of another digest")

		m := pushImage(t, s, "team/app", "one", "v1", at(0), d)
		must(t, s.UnlinkBlob(ctx(t), "team/app", d))
		wantInUse(t, s, d, true, "when only a manifest references it")

		must(t, s.DeleteManifest(ctx(t), "team/app", m.Digest))
		wantInUse(t, s, d, false, "after its link and its manifest are gone")

		link(t, s, "team/web", d, at(0))
		wantInUse(t, s, d, true, "when linked in another repository")
		deleted, err := s.DeleteBlobLinkIfUnreferenced(ctx(t), "team/web", d, at(50))
		must(t, err)
		if !deleted {
			t.Fatal("DeleteBlobLinkIfUnreferenced did not delete an unreferenced link")
		}
		wantInUse(t, s, d, false, "after GC deleted its last link")
	}},
}

// concurrencyTests check that concurrent callers neither fail on locks nor
// lose writes: a registry serves many pushes and pulls at once.
var concurrencyTests = []test{
	{"ConcurrentPushesAndPulls", func(t *testing.T, s berth.MetadataStore) {
		const workers, pushes = 8, 15
		shared := digest("base-layer")
		link(t, s, "team/app", shared, at(0))
		pulled := pushImage(t, s, "team/app", "pulled", "stable", at(0), shared)

		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*pushes)
		for w := range workers {
			wg.Go(func() {
				for i := range pushes {
					name := fmt.Sprintf("w%d-%d", w, i)
					own := digest(name)
					for _, l := range []berth.BlobLink{
						{Repository: "team/app", Digest: shared, Size: 1, Created: at(i)},
						{Repository: "team/app", Digest: own, Size: 1, Created: at(i)},
						{Repository: fmt.Sprintf("team/w%d", w), Digest: own, Size: 1, Created: at(i)},
					} {
						if err := s.LinkBlob(ctx(t), l); err != nil {
							errs <- fmt.Errorf("LinkBlob %s: %w", name, err)
							return
						}
					}
					m := newManifest("team/app", name, at(i), blobRef(shared), blobRef(own))
					if err := s.PutManifest(ctx(t), m, name); err != nil {
						errs <- fmt.Errorf("PutManifest %s: %w", name, err)
						return
					}
				}
			})
			wg.Go(func() {
				for range pushes * 4 {
					m, err := s.FindManifest(ctx(t), "team/app", "stable")
					if err != nil {
						errs <- fmt.Errorf("FindManifest while pushing: %w", err)
						return
					}
					if m.Digest != pulled.Digest {
						errs <- fmt.Errorf("FindManifest while pushing: got %s, want %s", m.Digest, pulled.Digest)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		tags := findTags(t, s, "team/app")
		if len(tags) != workers*pushes+1 {
			t.Errorf("FindTags has %d tags, want %d", len(tags), workers*pushes+1)
		}
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		if len(repos) != workers+1 {
			t.Errorf("FindRepositories = %s, want team/app and %d worker repositories", strings.Join(repos, " "), workers)
		}
	}},
	{"ConcurrentCreateOfOneUploadSession", func(t *testing.T, s berth.MetadataStore) {
		const callers = 8
		var wg sync.WaitGroup
		codes := make(chan berth.Code, callers)
		for i := range callers {
			wg.Go(func() {
				err := s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(i)})
				codes <- berth.ErrorCode(err)
			})
		}
		wg.Wait()
		close(codes)
		var ok, conflicts int
		for c := range codes {
			switch c {
			case "":
				ok++
			case berth.CodeConflict:
				conflicts++
			default:
				t.Errorf("CreateUploadSession: code %q, want success or conflict", c)
			}
		}
		if ok != 1 || conflicts != callers-1 {
			t.Errorf("%d creates succeeded and %d conflicted, want 1 and %d", ok, conflicts, callers-1)
		}
	}},
}
