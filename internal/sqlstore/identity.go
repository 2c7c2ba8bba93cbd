package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth"
)

// principalNotFound is the not_found of a principal looked up by column.
func principalNotFound(column, value string) *berth.Error {
	switch column {
	case "name":
		return berth.Errorf(berth.CodeNotFound, "no principal is named %s", value)
	case "client_id":
		return berth.Errorf(berth.CodeNotFound, "no principal has client id %s", value)
	}
	return berth.Errorf(berth.CodeNotFound, "no principal has id %s", value)
}

// lockPrincipal returns not_found unless a principal has id. On PostgreSQL
// it keeps the row locked FOR KEY SHARE until tx ends, so a DeletePrincipal
// meanwhile waits, then deletes what tx added with the principal; SQLite's
// write transactions run one at a time, so the check alone holds until tx
// ends.
func (s *Store) lockPrincipal(ctx context.Context, tx Querier, id string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM principals WHERE id = $1`+s.d.ForKeyShare, id).Scan(&ok)
	switch {
	case IsNoRows(err):
		return principalNotFound("id", id)
	case err != nil:
		return fmt.Errorf("find principal %s: %w", id, err)
	}
	return nil
}
