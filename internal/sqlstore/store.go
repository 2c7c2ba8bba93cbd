package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// Store is the metadata store written once for every SQL engine. An
// adapter embeds it, so the adapter's DB has its methods.
type Store struct {
	d     *Dialect
	c     Conn
	cache *readCache // see CacheReads; nil: none

	// auditMu orders this process's audit appends; auditHead, when not
	// nil, is the head the last of them wrote (see AppendAuditEvents).
	auditMu   sync.Mutex
	auditHead *berth.AuditLink
}

// New returns the store over c, whose database Migrate has brought up to
// date, speaking d.
func New(d *Dialect, c Conn) *Store { return &Store{d: d, c: c} }

// inTx runs fn in a write transaction; see InTx.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx Querier) error) error {
	return InTx(ctx, s.c, op, fn)
}

// Time returns a Scan destination that reads a time column of either
// engine (SQLite's Unix microseconds, PostgreSQL's timestamptz) into *t, in
// UTC. NULL is an error: use NullTime for a nullable column.
func Time(t *time.Time) sql.Scanner { return (*timeDest)(t) }

type timeDest time.Time

func (d *timeDest) Scan(v any) error {
	switch x := v.(type) {
	case int64:
		*d = timeDest(time.UnixMicro(x).UTC())
	case time.Time:
		*d = timeDest(x.UTC())
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	return nil
}

// NullTime returns a Scan destination that reads a nullable time column
// into *t: nil for NULL, else the time in UTC.
func NullTime(t **time.Time) sql.Scanner { return nullTimeDest{t} }

type nullTimeDest struct{ t **time.Time }

func (d nullTimeDest) Scan(v any) error {
	if v == nil {
		*d.t = nil
		return nil
	}
	var t time.Time
	if err := (*timeDest)(&t).Scan(v); err != nil {
		return err
	}
	*d.t = &t
	return nil
}

// optTime is t as an optional time column stores it: Dialect.ZeroTime for
// the zero time.
func (s *Store) optTime(t time.Time) any {
	if t.IsZero() {
		return s.d.ZeroTime
	}
	return t
}

// OptTime returns a Scan destination for an optional time column: like
// Time, and the zero time for what Store.optTime wrote for it (0 on SQLite).
func OptTime(t *time.Time) sql.Scanner { return (*optTimeDest)(t) }

type optTimeDest time.Time

func (d *optTimeDest) Scan(v any) error {
	if x, ok := v.(int64); ok && x == 0 {
		*d = optTimeDest{}
		return nil
	}
	return (*timeDest)(d).Scan(v)
}

// NonNil keeps an empty byte string a zero-length value rather than NULL.
func NonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
