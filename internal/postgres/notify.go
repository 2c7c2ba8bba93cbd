package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth/internal/sqlstore"
)

// ChannelInvalidate is the PostgreSQL notification channel on which replicas
// announce a change that the others must not serve stale: its payload is the
// schema followed by a space and what changed (PayloadState, PayloadKeys),
// so that installations sharing a database ignore each other.
const ChannelInvalidate = "berth_invalidate"

// What a notification on ChannelInvalidate says changed.
const (
	// PayloadState: principals, secrets, role assignments or connections.
	PayloadState = "state"
	// PayloadKeys: the signing keys.
	PayloadKeys = "keys"
	// PayloadReconnected is never sent: Listen hands it to its callback after
	// it reconnected, since notifications sent meanwhile are lost.
	PayloadReconnected = "reconnected"
)

const notifySQL = `SELECT pg_notify($1, current_schema() || ' ' || $2)`

// notifyTx announces what on ChannelInvalidate when tx commits.
func notifyTx(ctx context.Context, tx sqlstore.Querier, what string) error {
	if _, err := tx.Exec(ctx, notifySQL, ChannelInvalidate, what); err != nil {
		return fmt.Errorf("notify %s: %w", what, err)
	}
	return nil
}

// Notify announces on ChannelInvalidate that what changed. Every replica
// listening in this schema, this one included, receives it.
func (db *DB) Notify(ctx context.Context, what string) error {
	if _, err := db.pool.Exec(ctx, notifySQL, ChannelInvalidate, what); err != nil {
		return fmt.Errorf("notify %s: %w", what, err)
	}
	return nil
}

// Listen calls fn with what each notification of this schema on
// ChannelInvalidate says changed, until ctx is done. It holds a connection
// of its own, outside the pool. When the connection fails it reports the
// error to onError, reconnects (waiting up to 5 s between tries) and then
// calls fn(PayloadReconnected): notifications sent while it was away are
// lost, so fn must then drop everything it caches. ready, when not nil, is
// closed once the first LISTEN is in place.
func (db *DB) Listen(ctx context.Context, fn func(what string), onError func(error), ready chan<- struct{}) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, func() {
			backoff = 100 * time.Millisecond
			if first {
				first = false
				if ready != nil {
					close(ready)
				}
			} else {
				fn(PayloadReconnected)
			}
		}, fn)
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(fmt.Errorf("listen on %s (%s): %w", ChannelInvalidate, db.host, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (db *DB) listenOnce(ctx context.Context, listening func(), fn func(string)) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+ChannelInvalidate); err != nil {
		return err
	}
	// While LISTEN is in place the read cache may serve (see changes);
	// what was announced before it is not known, so the counter moves.
	db.changes.moved()
	db.changes.listeners.Add(1)
	defer db.changes.listeners.Add(-1)
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if s, what, ok := strings.Cut(n.Payload, " "); ok && s == schema {
			db.changes.moved()
			fn(what)
		}
	}
}
