package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

var blobLinkTests = []test{
	{"LinkAndFind", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		must(t, s.LinkBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: d, Size: 1234, Created: at(0)}))
		got, err := s.FindBlobLink(ctx(t), "team/app", d)
		must(t, err)
		if got.Repository != "team/app" || got.Digest != d || got.Size != 1234 {
			t.Errorf("FindBlobLink = %+v, want team/app %s size 1234", got, d)
		}
		wantTime(t, "Created", got.Created, at(0))
	}},
	{"LinkCreatesRepository", func(t *testing.T, s berth.MetadataStore) {
		link(t, s, "team/app", digest("layer"), at(0))
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "FindRepositories", repos, []string{"team/app"})
		tags, err := s.FindTags(ctx(t), "team/app", "", -1)
		must(t, err)
		wantStrings(t, "FindTags of a repository with only blobs", tags, nil)
	}},
	{"LinkAgainRefreshesCreated", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		link(t, s, "team/app", d, at(0))
		link(t, s, "team/app", d, at(60))
		got, err := s.FindBlobLink(ctx(t), "team/app", d)
		must(t, err)
		wantTime(t, "Created after relinking", got.Created, at(60))
		repos, err := s.FindBlobRepositories(ctx(t), d)
		must(t, err)
		wantStrings(t, "FindBlobRepositories after relinking", repos, []string{"team/app"})
	}},
	{"FindUnknownIsBlobUnknown", func(t *testing.T, s berth.MetadataStore) {
		_, err := s.FindBlobLink(ctx(t), "team/app", digest("layer"))
		wantCode(t, "FindBlobLink in a missing repository", err, berth.CodeBlobUnknown)

		link(t, s, "team/app", digest("layer"), at(0))
		_, err = s.FindBlobLink(ctx(t), "team/app", digest("other"))
		wantCode(t, "FindBlobLink of an unlinked digest", err, berth.CodeBlobUnknown)
		_, err = s.FindBlobLink(ctx(t), "team/other", digest("layer"))
		wantCode(t, "FindBlobLink in a repository that does not hold it", err, berth.CodeBlobUnknown)
	}},
	{"FindBlobLinksAtOnce", func(t *testing.T, s berth.MetadataStore) {
		links, err := s.FindBlobLinks(ctx(t), "team/app", []berth.Digest{digest("a"), digest("b")})
		must(t, err)
		if len(links) != 0 {
			t.Errorf("FindBlobLinks in a missing repository = %v, want none", links)
		}
		must(t, s.LinkBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: digest("a"), Size: 10, Created: at(0)}))
		must(t, s.LinkBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: digest("c"), Size: 30, Created: at(60)}))
		link(t, s, "team/other", digest("b"), at(0))
		// Once with the links read before (a read cache may keep them),
		// once after another write.
		for _, when := range []string{"after FindBlobLink", "after another write"} {
			if when == "after FindBlobLink" {
				_, err := s.FindBlobLink(ctx(t), "team/app", digest("a"))
				must(t, err)
			} else {
				link(t, s, "team/third", digest("a"), at(0))
			}
			links, err := s.FindBlobLinks(ctx(t), "team/app", []berth.Digest{digest("a"), digest("b"), digest("c"), digest("a")})
			must(t, err)
			if len(links) != 2 || links[digest("a")].Size != 10 || links[digest("c")].Size != 30 ||
				links[digest("c")].Repository != "team/app" || links[digest("c")].Digest != digest("c") {
				t.Errorf("FindBlobLinks %s = %+v, want a (10 bytes) and c (30 bytes) of team/app", when, links)
			}
			wantTime(t, "Created of c", links[digest("c")].Created, at(60))
		}
		links, err = s.FindBlobLinks(ctx(t), "team/app", nil)
		must(t, err)
		if len(links) != 0 {
			t.Errorf("FindBlobLinks of no digest = %v", links)
		}
	}},
	{"Unlink", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		link(t, s, "team/app", d, at(0))
		link(t, s, "team/web", d, at(0))
		must(t, s.UnlinkBlob(ctx(t), "team/app", d))
		_, err := s.FindBlobLink(ctx(t), "team/app", d)
		wantCode(t, "FindBlobLink after UnlinkBlob", err, berth.CodeBlobUnknown)
		if _, err := s.FindBlobLink(ctx(t), "team/web", d); err != nil {
			t.Errorf("the link of another repository went with it: %v", err)
		}
		wantCode(t, "UnlinkBlob twice", s.UnlinkBlob(ctx(t), "team/app", d), berth.CodeBlobUnknown)
	}},
	{"UnlinkUnknownIsBlobUnknown", func(t *testing.T, s berth.MetadataStore) {
		wantCode(t, "UnlinkBlob in a missing repository", s.UnlinkBlob(ctx(t), "team/app", digest("layer")), berth.CodeBlobUnknown)
		link(t, s, "team/app", digest("layer"), at(0))
		wantCode(t, "UnlinkBlob of an unlinked digest", s.UnlinkBlob(ctx(t), "team/app", digest("other")), berth.CodeBlobUnknown)
	}},
	{"FindBlobRepositoriesSorted", func(t *testing.T, s berth.MetadataStore) {
		d := digest("layer")
		// Byte order: '-' < '/' < 'a'.
		for _, repo := range []string{"team/web", "a", "team-x/app", "team/app"} {
			link(t, s, repo, d, at(0))
		}
		link(t, s, "unrelated", digest("other"), at(0))
		repos, err := s.FindBlobRepositories(ctx(t), d)
		must(t, err)
		wantStrings(t, "FindBlobRepositories", repos, []string{"a", "team-x/app", "team/app", "team/web"})

		repos, err = s.FindBlobRepositories(ctx(t), digest("nowhere"))
		must(t, err)
		wantStrings(t, "FindBlobRepositories of an unknown digest", repos, nil)
	}},
}

var uploadSessionTests = []test{
	{"CreateAndFind", func(t *testing.T, s berth.MetadataStore) {
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(0)}))
		got, err := s.FindUploadSession(ctx(t), "u-1")
		must(t, err)
		if got.ID != "u-1" || got.Repository != "team/app" {
			t.Errorf("FindUploadSession = %+v, want u-1 of team/app", got)
		}
		wantTime(t, "Created", got.Created, at(0))
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, s berth.MetadataStore) {
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(0)}))
		err := s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/web", Created: at(5)})
		wantCode(t, "CreateUploadSession with an existing id", err, berth.CodeConflict)
		got, err := s.FindUploadSession(ctx(t), "u-1")
		must(t, err)
		if got.Repository != "team/app" {
			t.Errorf("the refused session replaced the first: repository %s", got.Repository)
		}
		wantTime(t, "Created after the refused create", got.Created, at(0))
	}},
	{"FindUnknownIsBlobUploadUnknown", func(t *testing.T, s berth.MetadataStore) {
		_, err := s.FindUploadSession(ctx(t), "u-missing")
		wantCode(t, "FindUploadSession", err, berth.CodeBlobUploadUnknown)
	}},
	{"DeleteIsIdempotent", func(t *testing.T, s berth.MetadataStore) {
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(0)}))
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-2", Repository: "team/app", Created: at(0)}))
		must(t, s.DeleteUploadSession(ctx(t), "u-1"))
		_, err := s.FindUploadSession(ctx(t), "u-1")
		wantCode(t, "FindUploadSession after delete", err, berth.CodeBlobUploadUnknown)
		if _, err := s.FindUploadSession(ctx(t), "u-2"); err != nil {
			t.Errorf("another session went with it: %v", err)
		}
		must(t, s.DeleteUploadSession(ctx(t), "u-1"))
		must(t, s.DeleteUploadSession(ctx(t), "u-never"))
		// The id is free again.
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(9)}))
	}},
	{"LinkUploadedBlobEndsTheSession", func(t *testing.T, s berth.MetadataStore) {
		d := linkEndsSession(t, s)
		// A session already gone (a retried PUT) still links.
		must(t, s.LinkUploadedBlob(ctx(t), berth.BlobLink{Repository: "team/web", Digest: d, Size: 6, Created: at(4)}, "u-1"))
		if _, err := s.FindBlobLink(ctx(t), "team/web", d); err != nil {
			t.Errorf("link with an absent session: %v", err)
		}
	}},
	{"LinkUploadedBlobIntoExistingRepository", func(t *testing.T, s berth.MetadataStore) {
		// The repository exists (the common push): the link and the end of
		// the session still go together, and another session stays.
		first := berth.DigestOf("sha256", []byte("first"))
		must(t, s.LinkBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: first, Size: 5, Created: at(0)}))
		d := linkEndsSession(t, s)
		// Linking again (a retried PUT, its session gone) refreshes the link.
		must(t, s.LinkUploadedBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: d, Size: 6, Created: at(5)}, "u-1"))
		link, err := s.FindBlobLink(ctx(t), "team/app", d)
		must(t, err)
		wantTime(t, "Created of the refreshed link", link.Created, at(5))
		if _, err := s.FindBlobLink(ctx(t), "team/app", first); err != nil {
			t.Errorf("the earlier link went: %v", err)
		}
	}},
	{"LinkUploadedBlobsAtOnceIntoANewRepository", func(t *testing.T, s berth.MetadataStore) {
		// A client pushes an image's blobs at once into a new repository:
		// every commit creates it or finds it, each links its blob and ends
		// its own session, and the repository exists once.
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			id := fmt.Sprintf("u-%d", i)
			must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: id, Repository: "team/new", Created: at(0)}))
			wg.Go(func() {
				errs[i] = s.LinkUploadedBlob(ctx(t), berth.BlobLink{Repository: "team/new", Digest: digest(id), Size: int64(i + 1), Created: at(1)}, id)
			})
		}
		wg.Wait()
		for i, err := range errs {
			must(t, err)
			link, err := s.FindBlobLink(ctx(t), "team/new", digest(fmt.Sprintf("u-%d", i)))
			must(t, err)
			if link.Size != int64(i+1) {
				t.Errorf("link %d: size %d", i, link.Size)
			}
			_, err = s.FindUploadSession(ctx(t), fmt.Sprintf("u-%d", i))
			wantCode(t, "the session of a linked blob", err, berth.CodeBlobUploadUnknown)
		}
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "repositories", repos, []string{"team/new"})
	}},
	{"SessionDoesNotCreateRepository", func(t *testing.T, s berth.MetadataStore) {
		must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(0)}))
		_, err := s.FindTags(ctx(t), "team/app", "", -1)
		wantCode(t, "FindTags of a repository that only has an upload session", err, berth.CodeNameUnknown)
	}},
	{"FindByCreatedBefore", func(t *testing.T, s berth.MetadataStore) {
		for i, id := range []string{"u-0", "u-1", "u-2"} {
			must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: id, Repository: "team/app", Created: at(i * 60)}))
		}
		for _, tc := range []struct {
			before int
			want   []string
		}{
			{0, nil},              // nothing is before the first
			{60, []string{"u-0"}}, // created exactly at the cutoff is not before it
			{61, []string{"u-0", "u-1"}},
			{3600, []string{"u-0", "u-1", "u-2"}},
		} {
			got, err := s.FindUploadSessions(ctx(t), at(tc.before))
			must(t, err)
			var ids []string
			for _, u := range got {
				ids = append(ids, u.ID)
				if u.Repository != "team/app" {
					t.Errorf("session %s: repository %q, want team/app", u.ID, u.Repository)
				}
			}
			slices.Sort(ids)
			wantStrings(t, "FindUploadSessions before "+at(tc.before).String(), ids, tc.want)
		}
		got, err := s.FindUploadSessions(ctx(t), at(61))
		must(t, err)
		for _, u := range got {
			if u.ID == "u-1" {
				wantTime(t, "Created of u-1", u.Created, at(60))
			}
		}
	}},
}

// linkEndsSession opens upload sessions u-1 and u-2 in team/app, links a
// blob uploaded through u-1, and checks that the link is there with its
// size and time, u-1 has ended and u-2 has not. It returns the blob's
// digest.
func linkEndsSession(t *testing.T, s berth.MetadataStore) berth.Digest {
	t.Helper()
	must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-1", Repository: "team/app", Created: at(1)}))
	must(t, s.CreateUploadSession(ctx(t), berth.UploadSession{ID: "u-2", Repository: "team/app", Created: at(1)}))
	d := berth.DigestOf("sha256", []byte("pushed"))
	must(t, s.LinkUploadedBlob(ctx(t), berth.BlobLink{Repository: "team/app", Digest: d, Size: 6, Created: at(3)}, "u-1"))
	link, err := s.FindBlobLink(ctx(t), "team/app", d)
	must(t, err)
	if link.Size != 6 {
		t.Errorf("linked size %d, want 6", link.Size)
	}
	wantTime(t, "Created of the link", link.Created, at(3))
	_, err = s.FindUploadSession(ctx(t), "u-1")
	wantCode(t, "FindUploadSession of the ended session", err, berth.CodeBlobUploadUnknown)
	if _, err := s.FindUploadSession(ctx(t), "u-2"); err != nil {
		t.Errorf("another session went with it: %v", err)
	}
	return d
}
