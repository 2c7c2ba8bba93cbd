package berth

import "context"

// RepositoryDeleter is the power of a metadata store to delete a whole
// repository (berth repo delete), an extension of ManifestStore checked by
// type assertion.
type RepositoryDeleter interface {
	// DeleteRepository removes repo from the catalog with its tags,
	// manifests and blob links, in one transaction, and says how many of each
	// went; name_unknown when it does not exist. Blob bytes no other
	// repository links are left for garbage collection.
	DeleteRepository(ctx context.Context, repo string) (RepositoryDeletion, error)
}

// RepositoryDeletion counts what DeleteRepository removed.
type RepositoryDeletion struct {
	Tags      int `json:"tags"`
	Manifests int `json:"manifests"`
	BlobLinks int `json:"blob_links"`
}

// RepositoryUnknown is name_unknown for repo.
func RepositoryUnknown(repo string) *Error {
	return Errorf(CodeNameUnknown, "repository %s does not exist", repo)
}
