package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// LinkBlob records that link.Repository holds link.Digest, creating the
// repository when needed. Linking again refreshes Created and Size.
func (db *DB) LinkBlob(ctx context.Context, link berth.BlobLink) error {
	return db.inTx(ctx, "link blob", func(tx pgx.Tx) error {
		id, err := ensureRepo(ctx, tx, link.Repository, link.Created)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO blob_links (repo_id, digest, size, created) VALUES ($1, $2, $3, $4)
			ON CONFLICT (repo_id, digest) DO UPDATE SET size = excluded.size, created = excluded.created`,
			id, string(link.Digest), link.Size, link.Created)
		if err != nil {
			return fmt.Errorf("link blob %s to %s: %w", link.Digest, link.Repository, err)
		}
		return nil
	})
}

// FindBlobLink returns blob_unknown unless repo holds d.
func (db *DB) FindBlobLink(ctx context.Context, repo string, d berth.Digest) (berth.BlobLink, error) {
	link := berth.BlobLink{Repository: repo, Digest: d}
	err := db.pool.QueryRow(ctx, `
		SELECT l.size, l.created
		FROM repositories r JOIN blob_links l ON l.repo_id = r.id
		WHERE r.name = $1 AND l.digest = $2`, repo, string(d)).Scan(&link.Size, &link.Created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return berth.BlobLink{}, blobUnknown(repo, d)
	case err != nil:
		return berth.BlobLink{}, fmt.Errorf("find blob %s in %s: %w", d, repo, err)
	}
	link.Created = utc(link.Created)
	return link, nil
}

// UnlinkBlob removes d from repo, or returns blob_unknown. Manifests that
// reference d are left as they are: deciding whether that is allowed is not
// the store's business.
func (db *DB) UnlinkBlob(ctx context.Context, repo string, d berth.Digest) error {
	res, err := db.pool.Exec(ctx, `
		DELETE FROM blob_links
		WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2`,
		repo, string(d))
	if err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
	}
	if res.RowsAffected() == 0 {
		return blobUnknown(repo, d)
	}
	return nil
}

// FindBlobRepositories returns the repositories holding d, sorted by name.
func (db *DB) FindBlobRepositories(ctx context.Context, d berth.Digest) ([]string, error) {
	names, err := collectStrings(db.pool.Query(ctx, `
		SELECT r.name
		FROM blob_links l JOIN repositories r ON r.id = l.repo_id
		WHERE l.digest = $1
		ORDER BY r.name`, string(d)))
	if err != nil {
		return nil, fmt.Errorf("find repositories of blob %s: %w", d, err)
	}
	return names, nil
}

func blobUnknown(repo string, d berth.Digest) *berth.Error {
	return berth.Errorf(berth.CodeBlobUnknown, "blob %s is not in repository %s", d, repo).
		WithDetail("digest", string(d))
}

// CreateUploadSession records s; conflict when the id exists.
func (db *DB) CreateUploadSession(ctx context.Context, s berth.UploadSession) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO upload_sessions (id, repository, created) VALUES ($1, $2, $3)`,
		s.ID, s.Repository, s.Created)
	switch {
	case isUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "an upload session with id %s already exists", s.ID)
	case err != nil:
		return fmt.Errorf("create upload session %s: %w", s.ID, err)
	}
	return nil
}

// FindUploadSession returns blob_upload_unknown when no session has id.
func (db *DB) FindUploadSession(ctx context.Context, id string) (berth.UploadSession, error) {
	s := berth.UploadSession{ID: id}
	err := db.pool.QueryRow(ctx,
		`SELECT repository, created FROM upload_sessions WHERE id = $1`, id).Scan(&s.Repository, &s.Created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return berth.UploadSession{}, berth.Errorf(berth.CodeBlobUploadUnknown, "no upload session has id %s", id)
	case err != nil:
		return berth.UploadSession{}, fmt.Errorf("find upload session %s: %w", id, err)
	}
	s.Created = utc(s.Created)
	return s, nil
}

// DeleteUploadSession removes the session; deleting an absent one is not an
// error.
func (db *DB) DeleteUploadSession(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM upload_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete upload session %s: %w", id, err)
	}
	return nil
}

// FindUploadSessions returns the sessions created strictly before the given
// time, oldest first.
func (db *DB) FindUploadSessions(ctx context.Context, createdBefore time.Time) ([]berth.UploadSession, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT id, repository, created FROM upload_sessions
		WHERE created < $1
		ORDER BY created, id`, createdBefore)
	if err != nil {
		return nil, fmt.Errorf("find upload sessions: %w", err)
	}
	defer rows.Close()
	sessions := []berth.UploadSession{}
	for rows.Next() {
		var s berth.UploadSession
		if err := rows.Scan(&s.ID, &s.Repository, &s.Created); err != nil {
			return nil, fmt.Errorf("find upload sessions: %w", err)
		}
		s.Created = utc(s.Created)
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find upload sessions: %w", err)
	}
	return sessions, nil
}
