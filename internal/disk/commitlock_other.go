//go:build !unix

package disk

import "context"

// lockFile holds nothing where flock does not exist: CommitLocker then
// excludes within one process only.
func lockFile(ctx context.Context, path string, exclusive bool) (func(), error) {
	return func() {}, ctx.Err()
}
