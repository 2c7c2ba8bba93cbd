package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

// FindUnreferencedBlobLinks returns the links created strictly before the
// given time that no manifest of the same repository references, ordered by
// repository and digest. It is a snapshot: DeleteBlobLinkIfUnreferenced
// checks each again before deleting.
func (s *Store) FindUnreferencedBlobLinks(ctx context.Context, createdBefore time.Time) ([]berth.BlobLink, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT r.name, l.digest, l.size, l.created
		FROM blob_links l JOIN repositories r ON r.id = l.repo_id
		WHERE l.created < $1
		  AND NOT EXISTS (
			SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = l.digest AND mr.repo_id = l.repo_id)
		ORDER BY r.name, l.digest`, createdBefore)
	links, err := collect(rows, err, func(r Rows) (berth.BlobLink, error) {
		var (
			link   berth.BlobLink
			digest string
		)
		err := r.Scan(&link.Repository, &digest, &link.Size, Time(&link.Created))
		link.Digest = berth.Digest(digest)
		return link, err
	})
	if err != nil {
		return nil, fmt.Errorf("find unreferenced blob links: %w", err)
	}
	return links, nil
}

// DeleteBlobLinkIfUnreferenced removes repo's link to d if it is still older
// than createdBefore and no manifest of repo references d, and reports
// whether it did.
//
// On SQLite the write transaction alone serialises this with every push.
// On PostgreSQL one statement would not do under read committed: a DELETE that waits for a
// push's lock re-reads the link but not manifest_refs, which it judges from
// the snapshot it started with. So the link is locked FOR UPDATE first (a
// push holds it FOR KEY SHARE until its commit; a re-link holds it until
// its commit and moves created past the cutoff), and the references are
// looked at after, in a statement that sees what the push committed.
func (s *Store) DeleteBlobLinkIfUnreferenced(ctx context.Context, repo string, d berth.Digest, createdBefore time.Time) (bool, error) {
	var deleted bool
	err := s.inTx(ctx, "delete unreferenced blob link", func(tx Querier) error {
		var id int64
		err := tx.QueryRow(ctx, `
			SELECT l.repo_id FROM repositories r JOIN blob_links l ON l.repo_id = r.id
			WHERE r.name = $1 AND l.digest = $2 AND l.created < $3`+s.d.ForUpdateOf("l"), repo, string(d), createdBefore).Scan(&id)
		switch {
		case IsNoRows(err):
			return nil
		case err != nil:
			return fmt.Errorf("delete unreferenced blob link %s from %s: %w", d, repo, err)
		}
		res, err := tx.Exec(ctx, `
			DELETE FROM blob_links
			WHERE repo_id = $1 AND digest = $2
			  AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = $1 AND ref_digest = $2)`,
			id, string(d))
		if err != nil {
			return fmt.Errorf("delete unreferenced blob link %s from %s: %w", d, repo, err)
		}
		if deleted = res > 0; deleted {
			return s.c.Changed(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return deleted, nil
}

// BlobInUse reports whether any repository links d or any manifest
// references it.
func (s *Store) BlobInUse(ctx context.Context, d berth.Digest) (bool, error) {
	var inUse bool
	err := s.c.Read().QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = $1)
		    OR EXISTS (SELECT 1 FROM manifest_refs WHERE ref_digest = $1)`,
		string(d)).Scan(&inUse)
	if err != nil {
		return false, fmt.Errorf("check whether blob %s is in use: %w", d, err)
	}
	return inUse, nil
}
