package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

// LinkBlob records that link.Repository holds link.Digest, creating the
// repository when needed. Linking again refreshes Created and Size.
func (s *Store) LinkBlob(ctx context.Context, link berth.BlobLink) error {
	return s.inTx(ctx, "link blob", func(tx Querier) error { return linkBlob(ctx, tx, link) })
}

// LinkUploadedBlob links the blob and deletes upload session in one
// transaction: a push's commit costs one write, not two. Where the engine
// takes writes in a WITH (Dialect.WritableCTE) it is one statement, so one
// round trip to a remote database instead of five or six (BEGIN, the
// repository's id, creating it, the link, the session, COMMIT), also when
// another commit creates the repository at the same moment (a client pushes
// an image's layers and config at once into a new repository): the INSERT
// then waits for that one and takes the id it created. It falls back to the
// transaction only if the statement links nothing all the same.
func (s *Store) LinkUploadedBlob(ctx context.Context, link berth.BlobLink, session string) error {
	if s.d.WritableCTE {
		// r is the repository's id, existing or created (the INSERT runs,
		// and takes an id, only when e found none; when another statement
		// created it since this one's snapshot, DO UPDATE waits for it and
		// returns its id, changing nothing; it sets a column no key holds,
		// so the row is locked FOR NO KEY UPDATE, which lets other commits'
		// foreign-key checks (FOR KEY SHARE) through: setting name locked it
		// FOR UPDATE, a deadlock with a third commit of the same blob); the
		// session is deleted only when the link is made, else nothing
		// changes.
		var linked int64
		err := s.c.Write().QueryRow(ctx, `
			WITH e AS (SELECT id FROM repositories WHERE name = $1::text),
			c AS (
				INSERT INTO repositories (name, created) SELECT $1::text, $4::timestamptz WHERE NOT EXISTS (SELECT 1 FROM e)
				ON CONFLICT (name) DO UPDATE SET created = repositories.created
				RETURNING id),
			r AS (SELECT id FROM e UNION ALL SELECT id FROM c),
			l AS (
				INSERT INTO blob_links (repo_id, digest, size, created) SELECT id, $2, $3, $4::timestamptz FROM r
				ON CONFLICT (repo_id, digest) DO UPDATE SET size = excluded.size, created = excluded.created
				RETURNING 1),
			d AS (DELETE FROM upload_sessions WHERE id = $5 AND EXISTS (SELECT 1 FROM r))
			SELECT count(*) FROM l`,
			link.Repository, string(link.Digest), link.Size, link.Created, session).Scan(&linked)
		switch {
		case err == nil && linked > 0:
			return nil
		case err != nil && !s.d.IsForeignKeyViolation(err):
			return fmt.Errorf("link uploaded blob %s to %s: %w", link.Digest, link.Repository, err)
		}
		// Nothing linked, or the repository e found was deleted before the
		// link's foreign-key check: the transaction creates it anew.
	}
	return s.inTx(ctx, "link uploaded blob", func(tx Querier) error {
		if err := linkBlob(ctx, tx, link); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM upload_sessions WHERE id = $1`, session); err != nil {
			return fmt.Errorf("delete upload session %s: %w", session, err)
		}
		return nil
	})
}

func linkBlob(ctx context.Context, tx Querier, link berth.BlobLink) error {
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
}

// findBlobLink is FindBlobLink's query.
func (s *Store) findBlobLink(ctx context.Context, repo string, d berth.Digest) (berth.BlobLink, error) {
	link := berth.BlobLink{Repository: repo, Digest: d}
	err := s.c.Read().QueryRow(pointRead(ctx), `
		SELECT l.size, l.created
		FROM repositories r JOIN blob_links l ON l.repo_id = r.id
		WHERE r.name = $1 AND l.digest = $2`, repo, string(d)).Scan(&link.Size, Time(&link.Created))
	switch {
	case IsNoRows(err):
		return berth.BlobLink{}, blobUnknown(repo, d)
	case err != nil:
		return berth.BlobLink{}, fmt.Errorf("find blob %s in %s: %w", d, repo, err)
	}
	return link, nil
}

// findBlobLinks reads the links of those of ds that repo holds.
func (s *Store) findBlobLinks(ctx context.Context, repo string, ds []berth.Digest) ([]berth.BlobLink, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	if !s.d.Arrays || len(ds) == 1 {
		var links []berth.BlobLink
		for _, d := range ds {
			l, err := s.findBlobLink(ctx, repo, d)
			if berth.IsCode(err, berth.CodeBlobUnknown) {
				continue
			}
			if err != nil {
				return nil, err
			}
			links = append(links, l)
		}
		return links, nil
	}
	digests := make([]string, len(ds))
	for i, d := range ds {
		digests[i] = string(d)
	}
	rows, err := s.c.Read().Query(pointRead(ctx), `
		SELECT l.digest, l.size, l.created
		FROM repositories r JOIN blob_links l ON l.repo_id = r.id
		WHERE r.name = $1 AND l.digest = ANY($2::text[])`, repo, digests)
	links, err := collect(rows, err,
		func(r Rows) (berth.BlobLink, error) {
			l := berth.BlobLink{Repository: repo}
			err := r.Scan((*string)(&l.Digest), &l.Size, Time(&l.Created))
			return l, err
		})
	if err != nil {
		return nil, fmt.Errorf("find blobs in %s: %w", repo, err)
	}
	return links, nil
}

// UnlinkBlob removes d from repo, or returns blob_unknown. Manifests that
// reference d are left as they are: deciding whether that is allowed is not
// the store's business.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d berth.Digest) error {
	// In a transaction, so that the read caches are told exactly when the
	// unlink commits.
	return s.inTx(ctx, "unlink blob", func(tx Querier) error {
		res, err := tx.Exec(ctx, `
			DELETE FROM blob_links
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2`,
			repo, string(d))
		if err != nil {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
		}
		if res == 0 {
			return blobUnknown(repo, d)
		}
		return s.c.Changed(ctx, tx)
	})
}

// FindBlobRepositories returns the repositories holding d, sorted by name.
func (s *Store) FindBlobRepositories(ctx context.Context, d berth.Digest) ([]string, error) {
	names, err := collectStrings(s.c.Read().Query(ctx, `
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
func (s *Store) CreateUploadSession(ctx context.Context, u berth.UploadSession) error {
	_, err := s.c.Write().Exec(ctx,
		`INSERT INTO upload_sessions (id, repository, created) VALUES ($1, $2, $3)`,
		u.ID, u.Repository, u.Created)
	switch {
	case s.d.IsUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "an upload session with id %s already exists", u.ID)
	case err != nil:
		return fmt.Errorf("create upload session %s: %w", u.ID, err)
	}
	return nil
}

// FindUploadSession returns blob_upload_unknown when no session has id.
func (s *Store) FindUploadSession(ctx context.Context, id string) (berth.UploadSession, error) {
	u := berth.UploadSession{ID: id}
	err := s.c.Read().QueryRow(ctx,
		`SELECT repository, created FROM upload_sessions WHERE id = $1`, id).Scan(&u.Repository, Time(&u.Created))
	switch {
	case IsNoRows(err):
		return berth.UploadSession{}, berth.Errorf(berth.CodeBlobUploadUnknown, "no upload session has id %s", id)
	case err != nil:
		return berth.UploadSession{}, fmt.Errorf("find upload session %s: %w", id, err)
	}
	return u, nil
}

// DeleteUploadSession removes the session; deleting an absent one is not an
// error.
func (s *Store) DeleteUploadSession(ctx context.Context, id string) error {
	if _, err := s.c.Write().Exec(ctx, `DELETE FROM upload_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete upload session %s: %w", id, err)
	}
	return nil
}

// FindUploadSessions returns the sessions created strictly before the given
// time, oldest first.
func (s *Store) FindUploadSessions(ctx context.Context, createdBefore time.Time) ([]berth.UploadSession, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT id, repository, created FROM upload_sessions
		WHERE created < $1
		ORDER BY created, id`, createdBefore)
	sessions, err := collect(rows, err, func(r Rows) (berth.UploadSession, error) {
		var u berth.UploadSession
		err := r.Scan(&u.ID, &u.Repository, Time(&u.Created))
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("find upload sessions: %w", err)
	}
	return sessions, nil
}
