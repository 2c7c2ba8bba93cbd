package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/berth-dev/berth/internal/sqlstore"
)

// Group commit. The write connection runs with synchronous=NORMAL, under
// which a WAL commit writes its frames without an fsync: the database stays
// consistent through a power loss, but the last commits may be lost. A write
// is made durable after its commit, outside the write connection, by an fsync
// of the WAL file that walSyncer shares among every commit made before it
// began. So no write returns before it is durable, as under
// synchronous=FULL, but a writer waits for the disk without holding the one
// write connection: the next writers commit meanwhile, and one fsync covers
// them all.
//
// SQLite syncs the WAL before each checkpoint and the database file after
// it, and starts the WAL over only once a checkpoint is complete, so a commit
// is durable once either the WAL that holds it is synced or a checkpoint has
// copied it; when the WAL file is gone (the last connection closed, after a
// checkpoint), every commit is in the synced database file.

// walSyncer makes the commits made so far durable by fsyncing the WAL file.
type walSyncer struct {
	path string // the WAL file: the database's path and "-wal"

	mu        sync.Mutex
	cond      sync.Cond
	committed uint64   // commits noted so far
	synced    uint64   // commits known durable
	syncing   bool     // a goroutine is in fsync
	f         *os.File // the WAL file, opened at the first sync
	err       error    // an fsync that failed: every later sync fails too
}

func newWALSyncer(dbPath string) *walSyncer {
	s := &walSyncer{path: dbPath + "-wal"}
	s.cond.L = &s.mu
	return s
}

// durable notes a commit that has returned and waits until an fsync begun
// after it has ended. After a failed fsync, the kernel may have dropped the
// pages it could not write, so a later fsync would prove nothing: every sync
// from then on fails, and the process must start again (SQLite's recovery
// reads the WAL as it is on disk).
func (s *walSyncer) durable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed++
	n := s.committed
	for s.synced < n {
		if s.err != nil {
			return s.err
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		upTo := s.committed
		s.mu.Unlock()
		err := s.fsync()
		s.mu.Lock()
		s.syncing = false
		if err != nil {
			s.err = fmt.Errorf("sync sqlite write-ahead log %s: %w", s.path, err)
		} else {
			s.synced = upTo
		}
		s.cond.Broadcast()
	}
	return nil
}

// fsync syncs the WAL file, opened again when SQLite has replaced it (a WAL
// is deleted when the last connection closes, and made anew by the next).
// It runs in one goroutine at a time.
func (s *walSyncer) fsync() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // checkpointed into the synced database file
	}
	if err != nil {
		return err
	}
	if s.f != nil {
		if held, err := s.f.Stat(); err != nil || !os.SameFile(held, fi) {
			s.f.Close()
			s.f = nil
		}
	}
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		s.f = f
	}
	return s.f.Sync()
}

func (s *walSyncer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// durableQ runs single writing statements on the write pool and returns once
// each is durable.
type durableQ struct {
	q    *poolQ
	sync *walSyncer
}

func (d durableQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	n, err := d.q.Exec(ctx, query, args...)
	if err != nil {
		return n, err
	}
	return n, d.sync.durable()
}

// Query's statement commits when its rows are closed: Close waits for that
// commit to be durable, and Err reports a failure of it.
func (d durableQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := d.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return &durableRows{Rows: rows, sync: d.sync}, nil
}

// QueryRow's statement commits when Scan has read the row; Scan returns once
// that commit is durable.
func (d durableQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return durableRow{row: d.q.QueryRow(ctx, query, args...), sync: d.sync}
}

type durableRow struct {
	row  sqlstore.Row
	sync *walSyncer
}

func (r durableRow) Scan(dest ...any) error {
	if err := r.row.Scan(dest...); err != nil {
		return err
	}
	return r.sync.durable()
}

type durableRows struct {
	sqlstore.Rows
	sync *walSyncer
	done bool // the statement ended and its commit was waited for
	err  error
}

// Next reports false once the statement has run to its end, which commits
// it; it waits for that commit to be durable first.
func (r *durableRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.end()
	return false
}

// Close ends the statement, which commits it, and waits for the commit to
// be durable.
func (r *durableRows) Close() {
	r.Rows.Close()
	r.end()
}

func (r *durableRows) end() {
	if r.done || r.Rows.Err() != nil {
		return
	}
	r.done = true
	r.err = r.sync.durable()
}

func (r *durableRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}
