package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/berth-dev/berth"
)

// ownerWatchInterval is how often berth serve looks at when owner access to
// the registry lapses.
const ownerWatchInterval = time.Hour

// ownerWatch warns in the log when the last live secret of an owner of the
// registry comes within 30, 7 and 1 day of expiring (once per threshold, and
// at start when already within one), and logs an error when no owner holds a
// live secret, naming the break-glass fix.
type ownerWatch struct {
	meta   berth.OwnerStore
	now    func() time.Time
	logger *slog.Logger
	data   string
	warned time.Duration // the threshold last warned of; 0 none, -1 lapsed
}

// check looks once, and logs what it must.
func (ow *ownerWatch) check(ctx context.Context) {
	at := ow.now()
	o, err := berth.FindOwnerAccess(ctx, ow.meta, at)
	if err != nil {
		if ctx.Err() == nil {
			ow.logger.Error("find when owner access to the registry lapses", slog.Any("err", err))
		}
		return
	}
	w := o.Warning(at)
	switch {
	case w < 0 && ow.warned >= 0:
		ow.logger.Error("no enabled owner of the registry holds a live secret: nobody can manage the registry",
			slog.String("hint", "berth admin recover --data "+ow.data+" (or --db URL) on the server's machine gives admin a new secret"))
	case w > 0 && (ow.warned == 0 || w < ow.warned || ow.warned < 0):
		ow.logger.Warn("the last live secret of an owner of the registry expires soon: then nobody can manage the registry",
			slog.String("principal", o.Principal), slog.String("secret_id", o.SecretID),
			slog.String("expires_at", o.Until.UTC().Format(time.RFC3339)), slog.Int("days_left", int(o.Until.Sub(at).Hours()/24)),
			slog.String("hint", "berth secret add "+o.Principal+" --expires-in 90d, or make another principal owner: berth role assign --role owner --scope registry --principal NAME"))
	}
	ow.warned = w
}

// run checks every interval until ctx is done.
func (ow *ownerWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ow.check(ctx)
		}
	}
}
