package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
)

// The admin commands that maintain a server (berth keys, gc, audit) run
// through its management API, like berth principal and berth role do, with
// BERTH_URL and credentials or the stored login, from any folder. They work
// on the stores directly only when told which (break-glass: the server is
// down, or its only owner is locked out), and then never create a data
// folder: one without berth metadata is refused.

// localStores reports whether an admin command works on the stores directly:
// --data, --db or --config is given, or BERTH_DATA, BERTH_DB or BERTH_CONFIG
// is set while BERTH_URL is not. Otherwise it runs through the server.
func (e *env) localStores(cmd *cobra.Command) bool {
	fl := cmd.Flags()
	for _, name := range []string{"data", "db", "config", "blobs"} {
		if fl.Lookup(name) != nil && fl.Changed(name) {
			return true
		}
	}
	if strings.TrimSpace(e.getenv(envURL)) != "" {
		return false
	}
	for _, v := range []string{"BERTH_DATA", "BERTH_DB", "BERTH_CONFIG"} {
		if strings.TrimSpace(e.getenv(v)) != "" {
			return true
		}
	}
	return false
}

// requireDataFolder refuses a data folder that holds no berth metadata,
// rather than creating an empty store there: a command run in the wrong
// folder must not report on (or change) a registry that does not exist.
func requireDataFolder(data string) error {
	_, err := os.Stat(filepath.Join(data, metadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return berth.Errorf(berth.CodeNotFound, "%s holds no berth metadata (%s): it is not the data folder of a berth server", data, metadataFile).
			WithHint("name the folder berth serve uses: --data DIR, or BERTH_DATA; or its database: --db postgres://…; " +
				"without them the command runs through the server (BERTH_URL, or berth login HOST)")
	}
	if err != nil {
		return fmt.Errorf("open the data folder: %w", err)
	}
	return nil
}

// openExisting opens the stores of an existing server for a command that
// works on them directly: the data folder must hold berth metadata.
func openExisting(ctx context.Context, cfg Config, logger *slog.Logger) (*served, error) {
	if !cfg.Postgres() {
		if err := requireDataFolder(cfg.Data); err != nil {
			return nil, err
		}
	}
	return openServed(ctx, cfg, logger)
}
