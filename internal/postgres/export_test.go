package postgres

import "time"

// StopClock makes the read cache's counter of db read its seconds from a
// clock that stands still.
func StopClock(db *DB) {
	t := db.changes.start
	db.changes.now = func() time.Time { return t }
}

// Moves returns how often the read cache's counter of db moved.
func Moves(db *DB) uint64 { return db.changes.n.Load() }
