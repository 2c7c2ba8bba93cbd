package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

var _ berth.RepositoryDeleter = (*DB)(nil)

// DeleteRepository removes repo with its tags, manifests and blob links; the
// repository row is locked first, so a push into it waits.
func (db *DB) DeleteRepository(ctx context.Context, repo string) (berth.RepositoryDeletion, error) {
	var out berth.RepositoryDeletion
	err := db.inTx(ctx, "delete repository", func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1 FOR UPDATE`, repo).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return berth.RepositoryUnknown(repo)
		case err != nil:
			return fmt.Errorf("delete repository %s: %w", repo, err)
		}
		for _, d := range []struct {
			q string
			n *int
		}{
			{`DELETE FROM tags WHERE repo_id = $1`, &out.Tags},
			{`DELETE FROM manifest_refs WHERE repo_id = $1`, nil},
			{`DELETE FROM manifests WHERE repo_id = $1`, &out.Manifests},
			{`DELETE FROM blob_links WHERE repo_id = $1`, &out.BlobLinks},
			{`DELETE FROM repositories WHERE id = $1`, nil},
		} {
			tag, err := tx.Exec(ctx, d.q, id)
			if err != nil {
				return fmt.Errorf("delete repository %s: %w", repo, err)
			}
			if d.n != nil {
				*d.n = int(tag.RowsAffected())
			}
		}
		return nil
	})
	return out, err
}
