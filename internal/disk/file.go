package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes b to path with mode 0600: to a synced temporary file
// in the same folder, renamed over path, with the folder synced after. A crash
// leaves the old content or the new, never a part. Other packages keep their
// small state files (keys, the secret pepper) this way.
func WriteFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LockFile holds an exclusive advisory lock on path (created if missing,
// mode 0600) until the returned function is called, waiting while another
// holds it, or until ctx ends. It excludes other processes where flock(2)
// exists, and holds nothing elsewhere; the kernel drops a dead process's lock.
func LockFile(ctx context.Context, path string) (func(), error) {
	return lockFile(ctx, path, true)
}
