package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlcodec"
)

// PutManifest stores m in m.Repository, creating the repository, and points tag
// at it when tag is not empty, in one transaction. Each reference must be in the
// repository (a blob as a link, a manifest as a stored manifest), else it returns
// manifest_blob_unknown naming the first missing digest (also as detail
// "digest") and nothing changes. Putting a digest the repository holds keeps the
// stored copy and only moves the tag.
func (db *DB) PutManifest(ctx context.Context, m *berth.Manifest, tag string) error {
	if m == nil {
		return errors.New("put manifest: nil manifest")
	}
	annotations, err := encodeAnnotations(m.Annotations)
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
	}
	refs, err := sqlcodec.EncodeReferences(m.References)
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
	}
	return db.inTx(ctx, "put manifest", func(tx *sql.Tx) error {
		id, err := ensureRepo(ctx, tx, m.Repository, m.Created)
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?)`,
			id, string(m.Digest)).Scan(&exists); err != nil {
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		if !exists {
			if err := insertManifest(ctx, tx, id, m, annotations, refs); err != nil {
				return err
			}
		}
		if tag == "" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO tags (repo_id, name, digest) VALUES (?, ?, ?)
			ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest`,
			id, tag, string(m.Digest)); err != nil {
			return fmt.Errorf("tag manifest %s in %s as %s: %w", m.Digest, m.Repository, tag, err)
		}
		return nil
	})
}

// insertManifest checks m's references against repository id and stores m
// with them.
func insertManifest(ctx context.Context, tx *sql.Tx, id int64, m *berth.Manifest, annotations sql.NullString, refs string) error {
	if len(m.References) > 0 {
		blobExists, err := tx.PrepareContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM blob_links WHERE repo_id = ? AND digest = ?)`)
		if err != nil {
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		defer blobExists.Close()
		manifestExists, err := tx.PrepareContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?)`)
		if err != nil {
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		defer manifestExists.Close()

		for _, ref := range m.References {
			stmt := blobExists
			if ref.Kind == berth.ReferenceManifest {
				stmt = manifestExists
			}
			var ok bool
			if err := stmt.QueryRowContext(ctx, id, string(ref.Digest)).Scan(&ok); err != nil {
				return fmt.Errorf("put manifest %s in %s: check %s %s: %w", m.Digest, m.Repository, ref.Kind, ref.Digest, err)
			}
			if !ok {
				return berth.Errorf(berth.CodeManifestBlobUnknown,
					"manifest %s references %s %s, which repository %s does not hold",
					m.Digest.Short(), ref.Kind, ref.Digest, m.Repository).
					WithHint("push the %s %s to %s before the manifest that references it", ref.Kind, ref.Digest.Short(), m.Repository).
					WithDetail("digest", string(ref.Digest))
			}
		}
	}

	if _, err := tx.ExecContext(ctx, `
		INSERT INTO manifests (repo_id, digest, media_type, content, artifact_type, subject, annotations, refs, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, string(m.Digest), m.MediaType, nonNil(m.Content), m.ArtifactType, string(m.Subject),
		annotations, refs, toDB(m.Created)); err != nil {
		return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
	}
	for _, ref := range m.References {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			id, string(m.Digest), string(ref.Digest), string(ref.Kind)); err != nil {
			return fmt.Errorf("put manifest %s in %s: record reference %s: %w", m.Digest, m.Repository, ref.Digest, err)
		}
	}
	return nil
}

// FindManifest returns the manifest that ref, a tag or a digest, names in repo,
// or manifest_unknown. It is one indexed query on a prepared statement: this is
// the pull path.
func (db *DB) FindManifest(ctx context.Context, repo, ref string) (*berth.Manifest, error) {
	stmt := db.findManifestByTag
	if berth.IsDigestReference(ref) {
		stmt = db.findManifestByDigest
	}
	m := &berth.Manifest{Repository: repo}
	var (
		digest, subject, refs string
		annotations           sql.NullString
		created               int64
	)
	err := stmt.QueryRowContext(ctx, repo, ref).Scan(
		&digest, &m.MediaType, &m.Content, &m.ArtifactType, &subject, &annotations, &refs, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, manifestUnknown(repo, ref)
	case err != nil:
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	m.Digest = berth.Digest(digest)
	m.Subject = berth.Digest(subject)
	m.Created = fromDB(created)
	if m.Annotations, err = decodeAnnotations(annotations); err != nil {
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	if m.References, err = sqlcodec.DecodeReferences(refs); err != nil {
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	return m, nil
}

func manifestUnknown(repo, ref string) *berth.Error {
	if berth.IsDigestReference(ref) {
		return berth.Errorf(berth.CodeManifestUnknown, "repository %s has no manifest %s", repo, ref)
	}
	return berth.Errorf(berth.CodeManifestUnknown, "repository %s has no tag %s", repo, ref)
}

// DeleteManifest removes the manifest, its references and every tag pointing at
// it, or returns manifest_unknown. Manifests that reference or refer to it are
// left as they are.
func (db *DB) DeleteManifest(ctx context.Context, repo string, d berth.Digest) error {
	return db.inTx(ctx, "delete manifest", func(tx *sql.Tx) error {
		id, ok, err := repoID(ctx, tx, repo)
		if err != nil {
			return err
		}
		if !ok {
			return manifestUnknown(repo, string(d))
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repo_id = ? AND digest = ?`,
			`DELETE FROM manifest_refs WHERE repo_id = ? AND manifest_digest = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id, string(d)); err != nil {
				return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo_id = ? AND digest = ?`, id, string(d))
		if err != nil {
			return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
		} else if n == 0 {
			return manifestUnknown(repo, string(d))
		}
		return nil
	})
}

// DeleteTag removes one tag, leaving its manifest, or returns manifest_unknown.
func (db *DB) DeleteTag(ctx context.Context, repo, tag string) error {
	res, err := db.write.ExecContext(ctx, `
		DELETE FROM tags
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?`, repo, tag)
	if err != nil {
		return fmt.Errorf("delete tag %s from %s: %w", tag, repo, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete tag %s from %s: %w", tag, repo, err)
	} else if n == 0 {
		return manifestUnknown(repo, tag)
	}
	return nil
}

// FindTags returns up to n of repo's tags in byte order, those after last when
// last is not empty; n < 0 means all. It returns name_unknown when the
// repository does not exist.
func (db *DB) FindTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	id, ok, err := repoID(ctx, db.read, repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, berth.Errorf(berth.CodeNameUnknown, "repository %s does not exist", repo)
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT name FROM tags
		WHERE repo_id = ? AND name > ?
		ORDER BY name
		LIMIT ?`, id, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("find tags of %s: %w", repo, err)
	}
	tags, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("find tags of %s: %w", repo, err)
	}
	return tags, nil
}

// FindRepositories returns up to n repository names in byte order, those after
// last when last is not empty; n < 0 means all.
func (db *DB) FindRepositories(ctx context.Context, last string, n int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT name FROM repositories
		WHERE name > ?
		ORDER BY name
		LIMIT ?`, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("find repositories: %w", err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("find repositories: %w", err)
	}
	return names, nil
}

// limit turns "n < 0 means all" into SQLite's LIMIT, where a negative value
// means no limit.
func limit(n int) int {
	if n < 0 {
		return -1
	}
	return n
}

// FindReferrers returns the descriptors of repo's manifests whose subject is d,
// only those of artifactType when it is not empty, ordered by digest. An
// unknown repository or subject has no referrers.
func (db *DB) FindReferrers(ctx context.Context, repo string, d berth.Digest, artifactType string) ([]berth.Descriptor, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT m.digest, m.media_type, length(m.content), m.artifact_type, m.annotations
		FROM repositories r
		JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = ? AND m.subject = ? AND m.subject <> ''
		  AND (? = '' OR m.artifact_type = ?)
		ORDER BY m.digest`, repo, string(d), artifactType, artifactType)
	if err != nil {
		return nil, fmt.Errorf("find referrers of %s in %s: %w", d, repo, err)
	}
	defer rows.Close()
	descs := []berth.Descriptor{}
	for rows.Next() {
		var (
			desc        berth.Descriptor
			digest      string
			annotations sql.NullString
		)
		if err := rows.Scan(&digest, &desc.MediaType, &desc.Size, &desc.ArtifactType, &annotations); err != nil {
			return nil, fmt.Errorf("find referrers of %s in %s: %w", d, repo, err)
		}
		desc.Digest = berth.Digest(digest)
		if desc.Annotations, err = decodeAnnotations(annotations); err != nil {
			return nil, fmt.Errorf("find referrers of %s in %s: %w", d, repo, err)
		}
		descs = append(descs, desc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find referrers of %s in %s: %w", d, repo, err)
	}
	return descs, nil
}

// encodeAnnotations stores annotations as a JSON object, and none as NULL.
func encodeAnnotations(a map[string]string) (sql.NullString, error) {
	if len(a) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode annotations: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func decodeAnnotations(s sql.NullString) (map[string]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal([]byte(s.String), &a); err != nil {
		return nil, fmt.Errorf("decode annotations: %w", err)
	}
	return a, nil
}

// nonNil keeps an empty content a zero-length BLOB rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
