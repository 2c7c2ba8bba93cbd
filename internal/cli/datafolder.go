package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// privateFiles are the files of the data folder that hold secrets: the
// metadata database and its journal files (webhook signing secrets, secret
// hashes), the secret-hashing pepper and the first admin's credentials.
var privateFiles = []string{metadataFile, metadataFile + "-wal", metadataFile + "-shm", metadataFile + "-journal",
	pepperFile, initialAdminFile, upstreamKeyFile, sealingKeyFile}

// tightenDataFolder makes the data folder readable by its owner only (0700)
// and each private file 0600, whatever the umask or an earlier installation
// left, and logs each change. SQLite creates its -wal and -shm files with
// the database file's mode, so tightening the database before opening it
// keeps them private too.
func tightenDataFolder(dir string, logger *slog.Logger) error {
	tighten := func(path string, mode fs.FileMode) error {
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if info.Mode().Perm()&^mode == 0 {
			return nil
		}
		if err := os.Chmod(path, mode); err != nil {
			return fmt.Errorf("restrict %s to its owner: %w", path, err)
		}
		if logger != nil {
			logger.Info("restricted a file of the data folder to its owner", slog.String("path", path),
				slog.String("was", info.Mode().Perm().String()), slog.String("now", mode.String()))
		}
		return nil
	}
	if err := tighten(dir, 0o700); err != nil {
		return err
	}
	for _, name := range privateFiles {
		if err := tighten(filepath.Join(dir, name), 0o600); err != nil {
			return err
		}
	}
	return nil
}
