package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
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
abandoned uploads, each once it is older than the grace period. It is safe to run
while berth serve runs on the same data folder: each deletion is re-checked as it
happens. --dry-run lists what would go, with sizes.

With --db postgres://… (or BERTH_DB) it collects the stores of the replicas on
that database, excluding their pushes of each blob it deletes; it refuses to run
while a replica is collecting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("grace") {
				cfg.GC.Grace = grace
			}
			ctx := cmd.Context()
			st, err := openServed(ctx, cfg, newLogger(cfg.Log, e.stderr))
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.openBlobs(ctx, cfg, e.getenv); err != nil {
				return err
			}
			last := time.Now()
			gc := &berth.GC{Meta: st.meta, Blobs: st.blobs, Uploads: st.blobs, Lock: st.commits, Grace: gcGrace(cfg.GC.Grace), DryRun: dryRun,
				Progress: func(p berth.GCProgress) {
					if now := time.Now(); now.Sub(last) > time.Second || p.Done == p.Total {
						last = now
						fmt.Fprintf(e.stderr, "gc: %s %d/%d examined, %d to remove\n", p.Phase, p.Done, p.Total, p.Removed)
					}
				}}
			var rep berth.GCReport
			run := func(ctx context.Context) (err error) {
				rep, err = gc.Run(ctx, time.Now())
				return err
			}
			ran := true
			if dryRun { // removes nothing: it need not exclude a replica's collection
				err = run(ctx)
			} else {
				ran, err = st.once(ctx, "gc", run)
			}
			if err != nil {
				return err
			}
			if !ran {
				return berth.Errorf(berth.CodeConflict, "another berth is collecting garbage on this database now").
					WithHint("wait for it to finish; berth serve collects every gc.interval, so another run may not be needed")
			}
			return printGCReport(e, rep, dryRun)
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

type gcLink struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
}

type gcItem struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
}

func printGCReport(e *env, rep berth.GCReport, dryRun bool) error {
	links := make([]gcLink, 0, len(rep.Links))
	for _, l := range rep.Links {
		links = append(links, gcLink{l.Repository, l.Digest.String(), l.Size})
	}
	blobs := make([]gcItem, 0, len(rep.Blobs))
	for _, b := range rep.Blobs {
		blobs = append(blobs, gcItem{b.Digest.String(), b.Size})
	}
	uploads := make([]gcItem, 0, len(rep.Uploads))
	for _, u := range rep.Uploads {
		uploads = append(uploads, gcItem{u.ID, u.Size})
	}
	if e.output == "json" {
		return e.printJSON(map[string]any{"dry_run": dryRun, "links": links, "blobs": blobs, "uploads": uploads,
			"blob_bytes": rep.BlobBytes, "upload_bytes": rep.UploadBytes})
	}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	for _, l := range links {
		fmt.Fprintf(e.stdout, "%s link %s@%s (%d bytes)\n", verb, l.Repository, l.Digest, l.Size)
	}
	for _, b := range blobs {
		fmt.Fprintf(e.stdout, "%s blob %s (%d bytes)\n", verb, b.ID, b.Size)
	}
	for _, u := range uploads {
		fmt.Fprintf(e.stdout, "%s upload %s (%d bytes)\n", verb, u.ID, u.Size)
	}
	fmt.Fprintf(e.stdout, "%s %d links, %d blobs (%d bytes), %d uploads (%d bytes)\n", verb,
		len(links), len(blobs), rep.BlobBytes, len(uploads), rep.UploadBytes)
	return nil
}
