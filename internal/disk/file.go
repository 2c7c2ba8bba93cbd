package disk

import (
	"context"
)

// LockFile holds an exclusive advisory lock on path (created if missing,
// mode 0600) until the returned function is called, waiting while another
// holds it, or until ctx ends. It excludes other processes where flock(2)
// exists, and holds nothing elsewhere; the kernel drops a dead process's lock.
func LockFile(ctx context.Context, path string) (func(), error) {
	return lockFile(ctx, path, true)
}
