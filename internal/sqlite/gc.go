package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

// FindUnreferencedBlobLinks returns the links created strictly before the given
// time that no manifest of the same repository references, ordered by
// repository and digest. It is a snapshot: DeleteBlobLinkIfUnreferenced checks
// each again before deleting.
func (db *DB) FindUnreferencedBlobLinks(ctx context.Context, createdBefore time.Time) ([]berth.BlobLink, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT r.name, l.digest, l.size, l.created
		FROM blob_links l JOIN repositories r ON r.id = l.repo_id
		WHERE l.created < ?
		  AND NOT EXISTS (
			SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = l.digest AND mr.repo_id = l.repo_id)
		ORDER BY r.name, l.digest`, toDB(createdBefore))
	if err != nil {
		return nil, fmt.Errorf("find unreferenced blob links: %w", err)
	}
	defer rows.Close()
	links := []berth.BlobLink{}
	for rows.Next() {
		var (
			link    berth.BlobLink
			digest  string
			created int64
		)
		if err := rows.Scan(&link.Repository, &digest, &link.Size, &created); err != nil {
			return nil, fmt.Errorf("find unreferenced blob links: %w", err)
		}
		link.Digest = berth.Digest(digest)
		link.Created = fromDB(created)
		links = append(links, link)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find unreferenced blob links: %w", err)
	}
	return links, nil
}

// DeleteBlobLinkIfUnreferenced removes repo's link to d if it is still older
// than createdBefore and no manifest of repo references d, and reports whether
// it did. The check and the delete are one statement in a write transaction, so
// a push that linked or referenced d meanwhile wins.
func (db *DB) DeleteBlobLinkIfUnreferenced(ctx context.Context, repo string, d berth.Digest, createdBefore time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, `
		DELETE FROM blob_links
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?)
		  AND digest = ?
		  AND created < ?
		  AND NOT EXISTS (
			SELECT 1 FROM manifest_refs mr WHERE mr.ref_digest = blob_links.digest AND mr.repo_id = blob_links.repo_id)`,
		repo, string(d), toDB(createdBefore))
	if err != nil {
		return false, fmt.Errorf("delete unreferenced blob link %s from %s: %w", d, repo, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete unreferenced blob link %s from %s: %w", d, repo, err)
	}
	return n > 0, nil
}

// BlobInUse reports whether any repository links d or any manifest references
// it.
func (db *DB) BlobInUse(ctx context.Context, d berth.Digest) (bool, error) {
	var inUse bool
	err := db.read.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = ?)
		    OR EXISTS (SELECT 1 FROM manifest_refs WHERE ref_digest = ?)`,
		string(d), string(d)).Scan(&inUse)
	if err != nil {
		return false, fmt.Errorf("check whether blob %s is in use: %w", d, err)
	}
	return inUse, nil
}
