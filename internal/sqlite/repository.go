package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/berth-dev/berth"
)

var _ berth.RepositoryDeleter = (*DB)(nil)

// DeleteRepository removes repo with its tags, manifests and blob links.
func (db *DB) DeleteRepository(ctx context.Context, repo string) (berth.RepositoryDeletion, error) {
	var out berth.RepositoryDeletion
	err := db.inTx(ctx, "delete repository", func(tx *sql.Tx) error {
		id, ok, err := repoID(ctx, tx, repo)
		if err != nil {
			return err
		}
		if !ok {
			return berth.RepositoryUnknown(repo)
		}
		for _, d := range []struct {
			q string
			n *int
		}{
			{`DELETE FROM tags WHERE repo_id = ?`, &out.Tags},
			{`DELETE FROM manifest_refs WHERE repo_id = ?`, nil},
			{`DELETE FROM manifests WHERE repo_id = ?`, &out.Manifests},
			{`DELETE FROM blob_links WHERE repo_id = ?`, &out.BlobLinks},
			{`DELETE FROM repositories WHERE id = ?`, nil},
		} {
			res, err := tx.ExecContext(ctx, d.q, id)
			if err != nil {
				return fmt.Errorf("delete repository %s: %w", repo, err)
			}
			if d.n != nil {
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("delete repository %s: %w", repo, err)
				}
				*d.n = int(n)
			}
		}
		return nil
	})
	return out, err
}
