package cli

import (
	"context"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/oauth"
)

// serverKeys lets the management API list and rotate the signing keys of
// berth serve (api.KeyRing): a rotation goes through the stores, as berth keys
// rotate --data does, so that on PostgreSQL every replica learns of it, and
// this server signs with the new key before the answer.
type serverKeys struct {
	keys   *oauth.Keyring
	st     *served
	cfg    Config
	issuer string
}

var _ api.KeyRing = serverKeys{}

func (k serverKeys) Keys() []oauth.KeyInfo { return k.keys.Keys() }

func (k serverKeys) Rotate(ctx context.Context) (string, error) {
	var kid string
	err := k.st.withKeyring(ctx, k.cfg, k.issuer, func(kr *oauth.Keyring) (err error) {
		kid, err = kr.Rotate(time.Now())
		return err
	})
	if err != nil {
		return "", err
	}
	return kid, k.keys.Reload(time.Now())
}

// serverGC runs a collection asked for through the management API
// (api.Collector), on the stores berth serve runs on, observed like the
// scheduled ones.
type serverGC struct {
	st      *served
	grace   time.Duration // the configured grace period
	observe func(time.Time, berth.GCReport, error)
}

var _ api.Collector = serverGC{}

func (g serverGC) Collect(ctx context.Context, opts api.GCOptions, progress func(berth.GCProgress)) (berth.GCReport, error) {
	gc := &berth.GC{Meta: g.st.meta, Blobs: g.st.blobs, Uploads: g.st.blobs, Lock: g.st.commits, Grace: gcGrace(g.grace),
		DryRun: opts.DryRun, Progress: progress}
	if opts.Grace > 0 {
		gc.Grace = opts.Grace
	}
	rep, err := collectOnce(ctx, g.st, gc)
	if !opts.DryRun && berth.ErrorCode(err) != berth.CodeConflict {
		g.observe(time.Now(), rep, err)
	}
	return rep, err
}

// collectOnce runs gc on st's stores: a dry run at once, a real one unless
// another replica collects now (conflict).
func collectOnce(ctx context.Context, st *served, gc *berth.GC) (berth.GCReport, error) {
	var rep berth.GCReport
	run := func(ctx context.Context) (err error) {
		rep, err = gc.Run(ctx, time.Now())
		return err
	}
	if gc.DryRun { // removes nothing: it need not exclude a replica's collection
		return rep, run(ctx)
	}
	ran, err := st.once(ctx, "gc", run)
	if err != nil {
		return rep, err
	}
	if !ran {
		return rep, berth.Errorf(berth.CodeConflict, "another berth is collecting garbage on this database now").
			WithHint("wait for it to finish; berth serve collects every gc.interval, so another run may not be needed")
	}
	return rep, nil
}
