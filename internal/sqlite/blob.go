package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

// LinkBlob records that link.Repository holds link.Digest, creating the
// repository when needed. Linking again refreshes Created and Size.
func (db *DB) LinkBlob(ctx context.Context, link berth.BlobLink) error {
	return db.inTx(ctx, "link blob", func(tx *sql.Tx) error {
		id, err := ensureRepo(ctx, tx, link.Repository, link.Created)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO blob_links (repo_id, digest, size, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo_id, digest) DO UPDATE SET size = excluded.size, created = excluded.created`,
			id, string(link.Digest), link.Size, toDB(link.Created))
		if err != nil {
			return fmt.Errorf("link blob %s to %s: %w", link.Digest, link.Repository, err)
		}
		return nil
	})
}

// FindBlobLink returns blob_unknown unless repo holds d.
func (db *DB) FindBlobLink(ctx context.Context, repo string, d berth.Digest) (berth.BlobLink, error) {
	link := berth.BlobLink{Repository: repo, Digest: d}
	var created int64
	err := db.findBlobLink.QueryRowContext(ctx, repo, string(d)).Scan(&link.Size, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.BlobLink{}, blobUnknown(repo, d)
	case err != nil:
		return berth.BlobLink{}, fmt.Errorf("find blob %s in %s: %w", d, repo, err)
	}
	link.Created = fromDB(created)
	return link, nil
}

// UnlinkBlob removes d from repo, or returns blob_unknown. Manifests that
// reference d are left as they are: deciding whether that is allowed is not
// the store's business.
func (db *DB) UnlinkBlob(ctx context.Context, repo string, d berth.Digest) error {
	res, err := db.write.ExecContext(ctx, `
		DELETE FROM blob_links
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?`,
		repo, string(d))
	if err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
	} else if n == 0 {
		return blobUnknown(repo, d)
	}
	return nil
}

// FindBlobRepositories returns the repositories holding d, sorted by name.
func (db *DB) FindBlobRepositories(ctx context.Context, d berth.Digest) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT r.name
		FROM blob_links l JOIN repositories r ON r.id = l.repo_id
		WHERE l.digest = ?
		ORDER BY r.name`, string(d))
	if err != nil {
		return nil, fmt.Errorf("find repositories of blob %s: %w", d, err)
	}
	names, err := scanStrings(rows)
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
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO upload_sessions (id, repository, created) VALUES (?, ?, ?)`,
		s.ID, s.Repository, toDB(s.Created))
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
	var created int64
	err := db.read.QueryRowContext(ctx,
		`SELECT repository, created FROM upload_sessions WHERE id = ?`, id).Scan(&s.Repository, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.UploadSession{}, berth.Errorf(berth.CodeBlobUploadUnknown, "no upload session has id %s", id)
	case err != nil:
		return berth.UploadSession{}, fmt.Errorf("find upload session %s: %w", id, err)
	}
	s.Created = fromDB(created)
	return s, nil
}

// DeleteUploadSession removes the session; deleting an absent one is not an
// error.
func (db *DB) DeleteUploadSession(ctx context.Context, id string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM upload_sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete upload session %s: %w", id, err)
	}
	return nil
}

// FindUploadSessions returns the sessions created strictly before the given
// time, oldest first.
func (db *DB) FindUploadSessions(ctx context.Context, createdBefore time.Time) ([]berth.UploadSession, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, repository, created FROM upload_sessions
		WHERE created < ?
		ORDER BY created, id`, toDB(createdBefore))
	if err != nil {
		return nil, fmt.Errorf("find upload sessions: %w", err)
	}
	defer rows.Close()
	sessions := []berth.UploadSession{}
	for rows.Next() {
		var s berth.UploadSession
		var created int64
		if err := rows.Scan(&s.ID, &s.Repository, &created); err != nil {
			return nil, fmt.Errorf("find upload sessions: %w", err)
		}
		s.Created = fromDB(created)
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find upload sessions: %w", err)
	}
	return sessions, nil
}

// scanStrings reads a one-column result into a non-nil slice and closes rows.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
