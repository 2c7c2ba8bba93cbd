package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newGCCommand(e *env) *cobra.Command {
	var (
		f      configFlags
		dryRun bool
		grace  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs and uploads that nothing references",
		Long: `Remove blob links no manifest references, blob bytes no repository holds and
abandoned uploads, each once it is older than the grace period. It runs on the
server, through its management API (BERTH_URL and an owner's credentials, or the
stored login), which streams its progress and report back. It is safe while the
registry serves: each deletion is re-checked as it happens. --dry-run lists
what would go, with sizes.

With --data DIR it collects that data folder directly (break-glass, with the
server stopped or unreachable; safe beside a running berth serve too). With
--db postgres://… (or BERTH_DB) it collects the stores of the replicas on that
database, excluding their pushes of each blob it deletes; it refuses to run
while a replica is collecting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 {
				return berth.Errorf(berth.CodeInvalid, "--grace %s is negative", grace).WithHint("berth gc --grace 1h (0s keeps nothing back)")
			}
			ctx := cmd.Context()
			last := time.Now()
			progress := func(p api.GCProgress) {
				if now := time.Now(); now.Sub(last) > time.Second || p.Done == p.Total {
					last = now
					fmt.Fprintf(e.stderr, "gc: %s %d/%d examined, %d to remove\n", p.Phase, p.Done, p.Total, p.Removed)
				}
			}
			if !e.localStores(cmd) {
				opts := api.GCOptions{DryRun: dryRun}
				if cmd.Flags().Changed("grace") {
					opts.Grace = gcGrace(grace)
				}
				return e.withClient(func(c *client.Client) error {
					rep, err := c.Collect(ctx, opts, progress)
					if err != nil {
						return err
					}
					return printGCReport(e, rep)
				})
			}
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("grace") {
				cfg.GC.Grace = grace
			}
			st, err := openExisting(ctx, cfg, newLogger(cfg.Log, e.stderr))
			if err != nil {
				return err
			}
			defer st.Close()
			if err := replicaStorageExists(cfg); err != nil {
				return err
			}
			if err := st.openBlobs(ctx, cfg, e.getenv); err != nil {
				return err
			}
			gc := &berth.GC{Meta: st.meta, Blobs: st.blobs, Uploads: st.blobs, Lock: st.commits, Grace: gcGrace(cfg.GC.Grace), DryRun: dryRun,
				Progress: func(p berth.GCProgress) {
					progress(api.GCProgress{Phase: p.Phase, Done: p.Done, Total: p.Total, Removed: p.Removed})
				}}
			rep, err := collectOnce(ctx, st, gc)
			if err != nil {
				return err
			}
			return printGCReport(e, api.NewGCReport(rep, dryRun))
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed and remove nothing")
	cmd.Flags().DurationVar(&grace, "grace", berth.DefaultGCGrace, "keep unreferenced content younger than this")
	return cmd
}

// gcGrace converts a configured grace period for berth.GC, which reads a zero
// Grace as "the default". A zero the user asked for (--grace 0s, gc.grace: 0s)
// means "no grace", so it becomes the smallest positive grace instead.
func gcGrace(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}

func printGCReport(e *env, rep api.GCReport) error {
	if e.output == "json" {
		return e.printJSON(rep)
	}
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	for _, l := range rep.Links {
		fmt.Fprintf(e.stdout, "%s link %s@%s (%d bytes)\n", verb, l.Repository, l.Digest, l.Size)
	}
	for _, b := range rep.Blobs {
		fmt.Fprintf(e.stdout, "%s blob %s (%d bytes)\n", verb, b.ID, b.Size)
	}
	for _, u := range rep.Uploads {
		fmt.Fprintf(e.stdout, "%s upload %s (%d bytes)\n", verb, u.ID, u.Size)
	}
	fmt.Fprintf(e.stdout, "%s %d links, %d blobs (%d bytes), %d uploads (%d bytes)\n", verb,
		len(rep.Links), len(rep.Blobs), rep.BlobBytes, len(rep.Uploads), rep.UploadBytes)
	return nil
}

// replicaStorageExists refuses a collection of the replicas' database (--db)
// without --blobs when the data folder holds no storage folder: it would
// create and walk an empty store of its own, collect the database's links
// and never the bytes they freed, and say nothing of it. Replicas share
// blobs through --blobs, or a storage folder mounted in each data folder,
// which must then be there.
func replicaStorageExists(cfg Config) error {
	if cfg.DB == "" || cfg.Blobs != "" {
		return nil
	}
	dir := filepath.Join(cfg.Data, "storage")
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	return berth.Errorf(berth.CodeInvalid, "the collection of the replicas' database has no blob store: no --blobs, and %s does not exist", dir).
		WithHint("name the replicas' blob store: berth gc --db URL --blobs 's3://BUCKET?endpoint=HOST:PORT&region=REGION', or --data DIR where DIR/storage is the folder the replicas share")
}
