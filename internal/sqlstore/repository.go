package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.RepositoryDeleter = (*Store)(nil)

// DeleteRepository removes repo with its tags, manifests and blob links; the
// repository row is locked first (on PostgreSQL), so a push into it waits.
func (s *Store) DeleteRepository(ctx context.Context, repo string) (berth.RepositoryDeletion, error) {
	var out berth.RepositoryDeletion
	err := s.inTx(ctx, "delete repository", func(tx Querier) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`+s.d.ForUpdate, repo).Scan(&id)
		switch {
		case IsNoRows(err):
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
			n, err := tx.Exec(ctx, d.q, id)
			if err != nil {
				return fmt.Errorf("delete repository %s: %w", repo, err)
			}
			if d.n != nil {
				*d.n = int(n)
			}
		}
		return s.c.Changed(ctx, tx)
	})
	return out, err
}

// repoID returns the id of the named repository, or ok false when it does
// not exist.
func repoID(ctx context.Context, q Querier, name string) (id int64, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, name).Scan(&id)
	switch {
	case IsNoRows(err):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("find repository %s: %w", name, err)
	}
	return id, true, nil
}

// ensureRepo returns the id of the named repository, creating it with the
// given creation time when it does not exist. A push into an existing
// repository, the common case, costs one indexed read. Two transactions
// creating it at once (PostgreSQL; SQLite runs one at a time) both get its
// id: the insert waits for the other and then does nothing, and the select
// that follows, a new statement, sees the other's row.
func ensureRepo(ctx context.Context, tx Querier, name string, created time.Time) (int64, error) {
	id, ok, err := repoID(ctx, tx, name)
	if err != nil || ok {
		return id, err
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO repositories (name, created) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING
		RETURNING id`, name, created).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !IsNoRows(err) {
		return 0, fmt.Errorf("create repository %s: %w", name, err)
	}
	id, ok, err = repoID(ctx, tx, name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("create repository %s: it exists and cannot be read", name)
	}
	return id, nil
}
