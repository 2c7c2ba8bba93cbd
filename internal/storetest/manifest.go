package storetest

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/berth-dev/berth"
)

// wantManifest checks that got is want as stored: every field the push carried.
// References are compared as a set: the contract does not order them.
func wantManifest(t *testing.T, what string, got, want *berth.Manifest) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil manifest", what)
	}
	if got.Repository != want.Repository || got.Digest != want.Digest || got.MediaType != want.MediaType ||
		got.ArtifactType != want.ArtifactType || got.Subject != want.Subject {
		t.Errorf("%s: got repository %q digest %s media type %q artifact type %q subject %q, want %q %s %q %q %q", what,
			got.Repository, got.Digest, got.MediaType, got.ArtifactType, got.Subject,
			want.Repository, want.Digest, want.MediaType, want.ArtifactType, want.Subject)
	}
	if !bytes.Equal(got.Content, want.Content) {
		t.Errorf("%s: content is %q, want %q", what, got.Content, want.Content)
	}
	if !maps.Equal(got.Annotations, want.Annotations) {
		t.Errorf("%s: annotations are %v, want %v", what, got.Annotations, want.Annotations)
	}
	if g, w := sortedRefs(got.References), sortedRefs(want.References); !slices.Equal(g, w) {
		t.Errorf("%s: references are %v, want %v", what, g, w)
	}
	wantTime(t, what+": Created", got.Created, want.Created)
}

func sortedRefs(refs []berth.Reference) []berth.Reference {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b berth.Reference) int {
		return cmp.Or(cmp.Compare(a.Digest, b.Digest), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// wantMissing checks that err is manifest_blob_unknown naming d in its detail
// "digest", as the OCI error envelope shows it.
func wantMissing(t *testing.T, what string, err error, d berth.Digest) {
	t.Helper()
	wantCode(t, what, err, berth.CodeManifestBlobUnknown)
	e := berth.AsError(err)
	if got := fmt.Sprint(e.Detail["digest"]); got != string(d) {
		t.Errorf("%s: detail digest is %q, want the first missing digest %s", what, got, d)
	}
}

func findTags(t *testing.T, s berth.MetadataStore, repo string) []string {
	t.Helper()
	tags, err := s.FindTags(ctx(t), repo, "", -1)
	must(t, err)
	return tags
}

func wantDescriptors(t *testing.T, what string, got []berth.Descriptor, want ...*berth.Manifest) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d descriptors %v, want %d", what, len(got), got, len(want))
	}
	for i, m := range want {
		w := m.Descriptor()
		g := got[i]
		if g.MediaType != w.MediaType || g.Digest != w.Digest || g.Size != w.Size || g.ArtifactType != w.ArtifactType ||
			!maps.Equal(g.Annotations, w.Annotations) {
			t.Errorf("%s: descriptor %d is %+v, want %+v", what, i, g, w)
		}
	}
}

// byDigest sorts manifests by digest, the order the referrers API lists them in.
func byDigest(ms ...*berth.Manifest) []*berth.Manifest {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b *berth.Manifest) int { return cmp.Compare(a.Digest, b.Digest) })
	return out
}

var manifestTests = []test{
	{"PutFindByTagAndDigest", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "v1", at(0), digest("config"), digest("layer"))
		got, err := s.FindManifest(ctx(t), "team/app", "v1")
		must(t, err)
		wantManifest(t, "FindManifest by tag", got, m)
		got, err = s.FindManifest(ctx(t), "team/app", string(m.Digest))
		must(t, err)
		wantManifest(t, "FindManifest by digest", got, m)
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"v1"})
	}},
	{"PutWithoutTag", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "", at(0), digest("layer"))
		got, err := s.FindManifest(ctx(t), "team/app", string(m.Digest))
		must(t, err)
		wantManifest(t, "FindManifest by digest", got, m)
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), nil)
	}},
	{"PutWithoutReferencesCreatesRepository", func(t *testing.T, s berth.MetadataStore) {
		m := newManifest("team/app", "empty", at(0))
		must(t, s.PutManifest(ctx(t), m, "v1"))
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "FindRepositories", repos, []string{"team/app"})
		got, err := s.FindManifest(ctx(t), "team/app", "v1")
		must(t, err)
		wantManifest(t, "FindManifest", got, m)
	}},
	{"ContentAndAnnotationsRoundTrip", func(t *testing.T, s berth.MetadataStore) {
		link(t, s, "team/app", digest("layer"), at(0))
		m := newManifest("team/app", "annotated", at(0), blobRef(digest("layer")))
		// Exact bytes, whatever they are: a NUL, invalid UTF-8, trailing space.
		m.Content = append([]byte("{\"k\":\"\x00\xff\xfe\"}  \n"), m.Content...)
		m.Digest = berth.DigestOf(berth.SHA256, m.Content)
		m.Annotations = map[string]string{
			"org.opencontainers.image.created": "2026-03-14T15:09:26Z",
			"org.example.empty":                "",
			"org.example.unicode":              "ünïcødé ✓ \"quoted\" \\ <tag>",
		}
		must(t, s.PutManifest(ctx(t), m, "v1"))
		got, err := s.FindManifest(ctx(t), "team/app", "v1")
		must(t, err)
		wantManifest(t, "FindManifest", got, m)
	}},
	{"MissingBlobIsManifestBlobUnknown", func(t *testing.T, s berth.MetadataStore) {
		present, missing1, missing2 := digest("present"), digest("missing-1"), digest("missing-2")
		link(t, s, "team/app", present, at(0))
		// The other repository's link does not count.
		link(t, s, "team/web", missing1, at(0))
		before := pushImage(t, s, "team/app", "before", "v1", at(0), present)

		m := newManifest("team/app", "broken", at(5), blobRef(present), blobRef(missing1), blobRef(missing2))
		wantMissing(t, "PutManifest", s.PutManifest(ctx(t), m, "v1"), missing1)

		// Nothing changed: no manifest, the tag where it was, no references.
		_, err := s.FindManifest(ctx(t), "team/app", string(m.Digest))
		wantCode(t, "FindManifest of the refused manifest", err, berth.CodeManifestUnknown)
		got, err := s.FindManifest(ctx(t), "team/app", "v1")
		must(t, err)
		wantManifest(t, "the tag after the refused push", got, before)
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"v1"})
		inUse, err := s.BlobInUse(ctx(t), missing2)
		must(t, err)
		if inUse {
			t.Errorf("BlobInUse(%s) after the refused push: the refused manifest's reference was kept", missing2.Short())
		}
	}},
	{"ReferenceKindsAreCheckedApart", func(t *testing.T, s berth.MetadataStore) {
		// One digest referenced both as a blob and as a manifest: its blob
		// link does not stand for the manifest, checked in one manifest.
		layer := digest("layer")
		link(t, s, "team/app", layer, at(0))
		m := newManifest("team/app", "both", at(1), blobRef(layer), manifestRef(layer))
		wantMissing(t, "PutManifest", s.PutManifest(ctx(t), m, "v1"), layer)
		// Many references, one missing in the middle: it is the one named.
		var refs []berth.Reference
		for i := range 20 {
			d := digest(fmt.Sprintf("layer-%d", i))
			if i != 13 {
				link(t, s, "team/app", d, at(0))
			}
			refs = append(refs, blobRef(d))
		}
		m = newManifest("team/app", "many", at(2), refs...)
		wantMissing(t, "PutManifest of 20 layers", s.PutManifest(ctx(t), m, "v2"), digest("layer-13"))
		link(t, s, "team/app", digest("layer-13"), at(3))
		must(t, s.PutManifest(ctx(t), m, "v2"))
		got, err := s.FindManifest(ctx(t), "team/app", "v2")
		must(t, err)
		wantManifest(t, "the manifest of 20 layers", got, m)
		inUse, err := s.BlobInUse(ctx(t), digest("layer-13"))
		must(t, err)
		if !inUse {
			t.Errorf("BlobInUse(layer-13) after the push: its reference was not recorded")
		}
	}},
	{"MissingBlobInNewRepositoryCreatesNothing", func(t *testing.T, s berth.MetadataStore) {
		link(t, s, "team/web", digest("layer"), at(0))
		m := newManifest("team/app", "broken", at(0), blobRef(digest("layer")))
		wantMissing(t, "PutManifest", s.PutManifest(ctx(t), m, "v1"), digest("layer"))
		_, err := s.FindTags(ctx(t), "team/app", "", -1)
		wantCode(t, "FindTags of the repository the refused push named", err, berth.CodeNameUnknown)
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "FindRepositories", repos, []string{"team/web"})
	}},
	{"ChildManifestReferences", func(t *testing.T, s berth.MetadataStore) {
		amd64 := pushImage(t, s, "team/app", "amd64", "", at(0), digest("layer-amd64"))
		arm64 := newManifest("team/app", "arm64", at(0))
		// A blob link with a child's digest does not stand for the manifest.
		link(t, s, "team/app", arm64.Digest, at(0))

		index := newManifest("team/app", "index", at(1), manifestRef(amd64.Digest), manifestRef(arm64.Digest))
		index.MediaType = imageIndex
		index.ArtifactType = ""
		wantMissing(t, "PutManifest of an index whose child is missing", s.PutManifest(ctx(t), index, "latest"), arm64.Digest)
		_, err := s.FindManifest(ctx(t), "team/app", "latest")
		wantCode(t, "FindManifest of the refused index's tag", err, berth.CodeManifestUnknown)

		// Nor does a manifest stand for a blob.
		wantMissing(t, "PutManifest referencing a manifest as a blob",
			s.PutManifest(ctx(t), newManifest("team/app", "odd", at(1), blobRef(amd64.Digest)), ""), amd64.Digest)

		must(t, s.PutManifest(ctx(t), arm64, ""))
		must(t, s.PutManifest(ctx(t), index, "latest"))
		got, err := s.FindManifest(ctx(t), "team/app", "latest")
		must(t, err)
		wantManifest(t, "FindManifest of the index", got, index)
	}},
	{"PutCachedManifestWithMissingChildren", func(t *testing.T, s berth.MetadataStore) {
		amd64 := pushImage(t, s, "hub/app", "amd64", "", at(0), digest("layer-amd64"))
		arm64 := newManifest("hub/app", "arm64", at(0), blobRef(digest("layer-arm64")))
		index := newIndex("hub/app", "index", at(1), amd64.Digest, arm64.Digest)

		// The cache stores the index although arm64 was never pulled.
		must(t, s.PutCachedManifest(ctx(t), index, "latest"))
		for _, ref := range []string{"latest", string(index.Digest)} {
			got, err := s.FindManifest(ctx(t), "hub/app", ref)
			must(t, err)
			wantManifest(t, "FindManifest "+ref+" of the cached index", got, index)
		}
		_, err := s.FindManifest(ctx(t), "hub/app", string(arm64.Digest))
		wantCode(t, "FindManifest of the child never stored", err, berth.CodeManifestUnknown)
		// Again, under another tag: the stored copy stays, the tag is set.
		must(t, s.PutCachedManifest(ctx(t), index, "1"))
		wantStrings(t, "FindTags", findTags(t, s, "hub/app"), []string{"1", "latest"})

		// Its blobs are checked as PutManifest checks them.
		wantMissing(t, "PutCachedManifest of a manifest whose blob is missing",
			s.PutCachedManifest(ctx(t), arm64, ""), digest("layer-arm64"))
		_, err = s.FindManifest(ctx(t), "hub/app", string(arm64.Digest))
		wantCode(t, "FindManifest of the refused manifest", err, berth.CodeManifestUnknown)
		bad := newIndex("hub/app", "bad", at(1), amd64.Digest)
		bad.References = append(bad.References, blobRef(digest("stray")))
		wantMissing(t, "PutCachedManifest of an index with a missing blob", s.PutCachedManifest(ctx(t), bad, "bad"), digest("stray"))
		_, err = s.FindManifest(ctx(t), "hub/app", "bad")
		wantCode(t, "FindManifest of the refused index's tag", err, berth.CodeManifestUnknown)

		// The child pulled later is stored as ever; the index is as it was.
		link(t, s, "hub/app", digest("layer-arm64"), at(2))
		must(t, s.PutCachedManifest(ctx(t), arm64, ""))
		got, err := s.FindManifest(ctx(t), "hub/app", string(arm64.Digest))
		must(t, err)
		wantManifest(t, "FindManifest of the child stored later", got, arm64)
		got, err = s.FindManifest(ctx(t), "hub/app", "latest")
		must(t, err)
		wantManifest(t, "FindManifest of the index once its child is in", got, index)

		// The index can be deleted, and so can its children after it.
		must(t, s.DeleteManifest(ctx(t), "hub/app", index.Digest))
		wantStrings(t, "FindTags after deleting the index", findTags(t, s, "hub/app"), nil)
		must(t, s.DeleteManifest(ctx(t), "hub/app", arm64.Digest))
		must(t, s.DeleteManifest(ctx(t), "hub/app", amd64.Digest))
		// And stored again, as the cache would, with no child at all.
		must(t, s.PutCachedManifest(ctx(t), index, "latest"))
		got, err = s.FindManifest(ctx(t), "hub/app", "latest")
		must(t, err)
		wantManifest(t, "the index stored again without its children", got, index)
	}},
	{"PutCachedManifestInNewRepository", func(t *testing.T, s berth.MetadataStore) {
		index := newIndex("hub/app", "index", at(0), digest("child-1"), digest("child-2"))
		must(t, s.PutCachedManifest(ctx(t), index, "latest"))
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "FindRepositories", repos, []string{"hub/app"})
		del, ok := s.(berth.RepositoryDeleter)
		if !ok {
			t.Fatalf("%T does not implement berth.RepositoryDeleter", s)
		}
		got, err := del.DeleteRepository(ctx(t), "hub/app")
		must(t, err)
		if want := (berth.RepositoryDeletion{Tags: 1, Manifests: 1}); got != want {
			t.Errorf("DeleteRepository = %+v, want %+v", got, want)
		}
	}},
	{"PutSameDigestKeepsFirstCopyAndMovesTag", func(t *testing.T, s berth.MetadataStore) {
		link(t, s, "team/app", digest("layer"), at(0))
		first := newManifest("team/app", "one", at(0), blobRef(digest("layer")))
		first.Annotations = map[string]string{"copy": "first"}
		must(t, s.PutManifest(ctx(t), first, "v1"))

		again := newManifest("team/app", "one", at(30), blobRef(digest("layer")))
		again.Annotations = map[string]string{"copy": "second"}
		if again.Digest != first.Digest {
			t.Fatal("the suite built two digests from one content")
		}
		must(t, s.PutManifest(ctx(t), again, "v2"))
		must(t, s.PutManifest(ctx(t), again, ""))

		for _, ref := range []string{"v1", "v2", string(first.Digest)} {
			got, err := s.FindManifest(ctx(t), "team/app", ref)
			must(t, err)
			wantManifest(t, "FindManifest "+ref, got, first)
		}
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"v1", "v2"})
	}},
	{"TagMovesBetweenManifests", func(t *testing.T, s berth.MetadataStore) {
		a := pushImage(t, s, "team/app", "a", "latest", at(0), digest("layer-a"))
		b := pushImage(t, s, "team/app", "b", "latest", at(10), digest("layer-b"))
		got, err := s.FindManifest(ctx(t), "team/app", "latest")
		must(t, err)
		wantManifest(t, "latest after the second push", got, b)
		got, err = s.FindManifest(ctx(t), "team/app", string(a.Digest))
		must(t, err)
		wantManifest(t, "the untagged first manifest by digest", got, a)
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"latest"})

		must(t, s.PutManifest(ctx(t), a, "latest"))
		got, err = s.FindManifest(ctx(t), "team/app", "latest")
		must(t, err)
		wantManifest(t, "latest moved back", got, a)
	}},
	{"DeleteManifestRemovesItsTags", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "v1", at(0), digest("layer"))
		must(t, s.PutManifest(ctx(t), m, "latest"))
		other := pushImage(t, s, "team/app", "two", "v2", at(0), digest("layer"))

		must(t, s.DeleteManifest(ctx(t), "team/app", m.Digest))
		for _, ref := range []string{string(m.Digest), "v1", "latest"} {
			_, err := s.FindManifest(ctx(t), "team/app", ref)
			wantCode(t, "FindManifest "+ref+" after DeleteManifest", err, berth.CodeManifestUnknown)
		}
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"v2"})
		got, err := s.FindManifest(ctx(t), "team/app", "v2")
		must(t, err)
		wantManifest(t, "the other manifest", got, other)
		if _, err := s.FindBlobLink(ctx(t), "team/app", digest("layer")); err != nil {
			t.Errorf("DeleteManifest removed a blob link: %v", err)
		}
		wantCode(t, "DeleteManifest twice", s.DeleteManifest(ctx(t), "team/app", m.Digest), berth.CodeManifestUnknown)

		// The digest can come back, with its old tag.
		must(t, s.PutManifest(ctx(t), m, "v1"))
		got, err = s.FindManifest(ctx(t), "team/app", "v1")
		must(t, err)
		wantManifest(t, "the manifest pushed again", got, m)
	}},
	{"DeleteManifestUnknown", func(t *testing.T, s berth.MetadataStore) {
		wantCode(t, "DeleteManifest in a missing repository",
			s.DeleteManifest(ctx(t), "team/app", digest("nothing")), berth.CodeManifestUnknown)
		pushImage(t, s, "team/app", "one", "v1", at(0))
		wantCode(t, "DeleteManifest of an unknown digest",
			s.DeleteManifest(ctx(t), "team/app", digest("nothing")), berth.CodeManifestUnknown)
	}},
	{"DeleteTagLeavesManifest", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "v1", at(0), digest("layer"))
		must(t, s.PutManifest(ctx(t), m, "latest"))
		must(t, s.DeleteTag(ctx(t), "team/app", "v1"))
		_, err := s.FindManifest(ctx(t), "team/app", "v1")
		wantCode(t, "FindManifest of the deleted tag", err, berth.CodeManifestUnknown)
		for _, ref := range []string{string(m.Digest), "latest"} {
			got, err := s.FindManifest(ctx(t), "team/app", ref)
			must(t, err)
			wantManifest(t, "FindManifest "+ref, got, m)
		}
		wantStrings(t, "FindTags", findTags(t, s, "team/app"), []string{"latest"})
		wantCode(t, "DeleteTag twice", s.DeleteTag(ctx(t), "team/app", "v1"), berth.CodeManifestUnknown)
		wantCode(t, "DeleteTag in a missing repository", s.DeleteTag(ctx(t), "team/none", "v1"), berth.CodeManifestUnknown)
	}},
	{"FindManifestUnknown", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "v1", at(0))
		for _, tc := range []struct{ repo, ref string }{
			{"team/none", "v1"},
			{"team/none", string(m.Digest)},
			{"team/app", "v2"},
			{"team/app", string(digest("nothing"))},
		} {
			_, err := s.FindManifest(ctx(t), tc.repo, tc.ref)
			wantCode(t, "FindManifest "+tc.repo+" "+tc.ref, err, berth.CodeManifestUnknown)
		}
	}},
	{"FindTagsOrderAndPagination", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "", at(0))
		for _, tag := range []string{"v1", "latest", "Latest", "1.0", "_x", "v1.1"} {
			must(t, s.PutManifest(ctx(t), m, tag))
		}
		pushImage(t, s, "team/other", "two", "zzz", at(0))
		all := []string{"1.0", "Latest", "_x", "latest", "v1", "v1.1"} // byte order, not a locale's
		for _, tc := range []struct {
			last string
			n    int
			want []string
		}{
			{"", -1, all},
			{"", 100, all},
			{"", 2, []string{"1.0", "Latest"}},
			{"Latest", 2, []string{"_x", "latest"}},
			{"latest", 5, []string{"v1", "v1.1"}},
			{"v1.1", 5, nil},
			{"M", -1, []string{"_x", "latest", "v1", "v1.1"}}, // last need not be a tag
			{"", 0, nil},
		} {
			got, err := s.FindTags(ctx(t), "team/app", tc.last, tc.n)
			must(t, err)
			wantStrings(t, fmt.Sprintf("FindTags(last=%q, n=%d)", tc.last, tc.n), got, tc.want)
		}
	}},
	{"FindTagsUnknownRepositoryIsNameUnknown", func(t *testing.T, s berth.MetadataStore) {
		_, err := s.FindTags(ctx(t), "team/app", "", -1)
		wantCode(t, "FindTags in an empty store", err, berth.CodeNameUnknown)
		pushImage(t, s, "team/app", "one", "v1", at(0))
		_, err = s.FindTags(ctx(t), "team/ap", "", -1)
		wantCode(t, "FindTags of a prefix of a repository", err, berth.CodeNameUnknown)
		_, err = s.FindTags(ctx(t), "team/app/x", "", 10)
		wantCode(t, "FindTags of a child path of a repository", err, berth.CodeNameUnknown)
	}},
	{"FindTagsWithoutTagsIsEmpty", func(t *testing.T, s berth.MetadataStore) {
		m := pushImage(t, s, "team/app", "one", "v1", at(0))
		must(t, s.DeleteTag(ctx(t), "team/app", "v1"))
		wantStrings(t, "FindTags after deleting the only tag", findTags(t, s, "team/app"), nil)
		must(t, s.DeleteManifest(ctx(t), "team/app", m.Digest))
		wantStrings(t, "FindTags after deleting the only manifest", findTags(t, s, "team/app"), nil)
	}},
	{"FindRepositoriesPagination", func(t *testing.T, s berth.MetadataStore) {
		got, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		wantStrings(t, "FindRepositories of an empty store", got, nil)

		link(t, s, "b", digest("layer"), at(0))
		pushImage(t, s, "a/x", "one", "v1", at(0))
		link(t, s, "a", digest("layer"), at(0))
		pushImage(t, s, "a-b", "two", "", at(0), digest("layer"))
		link(t, s, "c", digest("layer"), at(0))
		all := []string{"a", "a-b", "a/x", "b", "c"}
		for _, tc := range []struct {
			last string
			n    int
			want []string
		}{
			{"", -1, all},
			{"", 5, all},
			{"", 2, []string{"a", "a-b"}},
			{"a-b", 2, []string{"a/x", "b"}},
			{"b", -1, []string{"c"}},
			{"c", 10, nil},
			{"a/", 1, []string{"a/x"}},
			{"", 0, nil},
		} {
			got, err := s.FindRepositories(ctx(t), tc.last, tc.n)
			must(t, err)
			wantStrings(t, fmt.Sprintf("FindRepositories(last=%q, n=%d)", tc.last, tc.n), got, tc.want)
		}
	}},
	{"FindReferrers", func(t *testing.T, s berth.MetadataStore) {
		const sbom, sig = "application/vnd.example.sbom+json", "application/vnd.example.signature"
		subject := pushImage(t, s, "team/app", "subject", "v1", at(0), digest("layer"))
		referrer := func(repo, name, artifactType string) *berth.Manifest {
			m := newManifest(repo, name, at(1))
			m.ArtifactType = artifactType
			m.Subject = subject.Digest
			m.Annotations = map[string]string{"org.example.name": name}
			must(t, s.PutManifest(ctx(t), m, ""))
			return m
		}
		r1 := referrer("team/app", "sbom-1", sbom)
		r2 := referrer("team/app", "sig", sig)
		r3 := referrer("team/app", "sbom-2", sbom)
		referrer("team/web", "sbom-elsewhere", sbom)
		pushImage(t, s, "team/app", "unrelated", "v2", at(1))

		got, err := s.FindReferrers(ctx(t), "team/app", subject.Digest, "")
		must(t, err)
		wantDescriptors(t, "FindReferrers", got, byDigest(r1, r2, r3)...)
		got, err = s.FindReferrers(ctx(t), "team/app", subject.Digest, sbom)
		must(t, err)
		wantDescriptors(t, "FindReferrers of the SBOM type", got, byDigest(r1, r3)...)
		got, err = s.FindReferrers(ctx(t), "team/app", subject.Digest, "application/vnd.example.none")
		must(t, err)
		wantDescriptors(t, "FindReferrers of a type nobody has", got)
		got, err = s.FindReferrers(ctx(t), "team/app", digest("nothing"), "")
		must(t, err)
		wantDescriptors(t, "FindReferrers of an unknown subject", got)
		got, err = s.FindReferrers(ctx(t), "team/none", subject.Digest, "")
		must(t, err)
		wantDescriptors(t, "FindReferrers in a missing repository", got)

		must(t, s.DeleteManifest(ctx(t), "team/app", r1.Digest))
		got, err = s.FindReferrers(ctx(t), "team/app", subject.Digest, "")
		must(t, err)
		wantDescriptors(t, "FindReferrers after deleting one", got, byDigest(r2, r3)...)
	}},
	{"ReferrerBeforeItsSubject", func(t *testing.T, s berth.MetadataStore) {
		// The distribution spec lets a referrer arrive before its subject: a
		// subject is not a reference.
		subject := newManifest("team/app", "subject", at(0))
		r := newManifest("team/app", "sig", at(0))
		r.Subject = subject.Digest
		must(t, s.PutManifest(ctx(t), r, ""))
		got, err := s.FindReferrers(ctx(t), "team/app", subject.Digest, "")
		must(t, err)
		wantDescriptors(t, "FindReferrers", got, r)
		found, err := s.FindManifest(ctx(t), "team/app", string(r.Digest))
		must(t, err)
		wantManifest(t, "FindManifest of the referrer", found, r)
	}},
	{"SameDigestInTwoRepositories", func(t *testing.T, s berth.MetadataStore) {
		a := pushImage(t, s, "team/app", "one", "v1", at(0), digest("layer"))
		// The same content in another repository needs that repository's blobs.
		b := newManifest("team/web", "one", at(5), blobRef(digest("layer")))
		wantMissing(t, "PutManifest without the repository's own link", s.PutManifest(ctx(t), b, "prod"), digest("layer"))
		link(t, s, "team/web", digest("layer"), at(5))
		must(t, s.PutManifest(ctx(t), b, "prod"))
		if a.Digest != b.Digest {
			t.Fatal("the suite built two digests from one content")
		}

		got, err := s.FindManifest(ctx(t), "team/web", string(b.Digest))
		must(t, err)
		wantManifest(t, "team/web's copy", got, b)
		_, err = s.FindManifest(ctx(t), "team/web", "v1")
		wantCode(t, "FindManifest of team/app's tag in team/web", err, berth.CodeManifestUnknown)

		must(t, s.DeleteManifest(ctx(t), "team/app", a.Digest))
		_, err = s.FindManifest(ctx(t), "team/app", string(a.Digest))
		wantCode(t, "FindManifest in team/app after deleting there", err, berth.CodeManifestUnknown)
		got, err = s.FindManifest(ctx(t), "team/web", "prod")
		must(t, err)
		wantManifest(t, "team/web's copy after deleting team/app's", got, b)
		wantStrings(t, "team/web's tags", findTags(t, s, "team/web"), []string{"prod"})

		// team/web's manifest still holds its own link.
		links, err := s.FindUnreferencedBlobLinks(ctx(t), at(3600))
		must(t, err)
		for _, l := range links {
			if l.Repository == "team/web" {
				t.Errorf("team/web's link %s reported unreferenced", l.Digest.Short())
			}
		}
	}},
}
