package storetest

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth"
)

// repositoryTests are the whole-repository operations: every metadata store
// must be a berth.RepositoryDeleter.
var repositoryTests = []test{
	{"DeleteRepository", func(t *testing.T, s berth.MetadataStore) {
		del, ok := s.(berth.RepositoryDeleter)
		if !ok {
			t.Fatalf("%T does not implement berth.RepositoryDeleter", s)
		}
		shared := digest("shared layer")
		m := pushImage(t, s, "team/app", "one", "v1", at(0), digest("config"), shared)
		must(t, s.PutManifest(ctx(t), m, "latest"))
		pushImage(t, s, "team/app", "two", "", at(1), digest("config 2"))
		pushImage(t, s, "team/other", "three", "v1", at(2), shared)

		got, err := del.DeleteRepository(ctx(t), "team/app")
		must(t, err)
		if want := (berth.RepositoryDeletion{Tags: 2, Manifests: 2, BlobLinks: 3}); got != want {
			t.Errorf("DeleteRepository = %+v, want %+v", got, want)
		}
		repos, err := s.FindRepositories(ctx(t), "", -1)
		must(t, err)
		if !slices.Equal(repos, []string{"team/other"}) {
			t.Errorf("repositories after the delete: %v, want [team/other]", repos)
		}
		if _, err := s.FindTags(ctx(t), "team/app", "", -1); !berth.IsCode(err, berth.CodeNameUnknown) {
			t.Errorf("FindTags of the deleted repository: %v, want name_unknown", err)
		}
		// Another repository's link to the same blob stays, and keeps it in use.
		if inUse, err := s.BlobInUse(ctx(t), shared); err != nil || !inUse {
			t.Errorf("BlobInUse(shared) = %v, %v; team/other still links it", inUse, err)
		}
		if inUse, err := s.BlobInUse(ctx(t), digest("config 2")); err != nil || inUse {
			t.Errorf("BlobInUse(config 2) = %v, %v; nothing links it any more", inUse, err)
		}
		if _, err := del.DeleteRepository(ctx(t), "team/app"); !berth.IsCode(err, berth.CodeNameUnknown) {
			t.Errorf("deleting it again: %v, want name_unknown", err)
		}
		// The name can be pushed to again, from nothing.
		pushImage(t, s, "team/app", "four", "v2", at(3), digest("config 4"))
		if tags, err := s.FindTags(ctx(t), "team/app", "", -1); err != nil || !slices.Equal(tags, []string{"v2"}) {
			t.Errorf("tags after a new push: %v, %v", tags, err)
		}
	}},
}
