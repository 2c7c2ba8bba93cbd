package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlcodec"
)

// PutManifest stores m in m.Repository, creating the repository, and points
// tag at it when tag is not empty, in one transaction. Each reference must be
// in the repository (a blob as a link, a manifest as a stored manifest), else
// it returns manifest_blob_unknown naming the first missing digest (also as
// detail "digest") and nothing changes. Putting a digest the repository holds
// keeps the stored copy and only moves the tag.
//
// The rows checked are locked FOR KEY SHARE until the commit: garbage
// collection and DeleteManifest lock what they delete FOR UPDATE, so they
// either finish first (and the check fails, or the manifest is stored anew)
// or wait for this push and then see its references and its tag.
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
	return db.inTx(ctx, "put manifest", func(tx pgx.Tx) error {
		id, err := ensureRepo(ctx, tx, m.Repository, m.Created)
		if err != nil {
			return err
		}
		if err := keepOrInsertManifest(ctx, tx, id, m, annotations, refs); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO tags (repo_id, name, digest) VALUES ($1, $2, $3)
			ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest`,
			id, tag, string(m.Digest)); err != nil {
			return fmt.Errorf("tag manifest %s in %s as %s: %w", m.Digest, m.Repository, tag, err)
		}
		return nil
	})
}

// keepOrInsertManifest leaves the transaction holding m's row in repository
// id, locked FOR KEY SHARE: the stored one when there is one, else m, stored
// with its references after checking them. A stored row deleted meanwhile by
// a DeleteManifest that held it is inserted again.
func keepOrInsertManifest(ctx context.Context, tx pgx.Tx, id int64, m *berth.Manifest, annotations *string, refs string) error {
	for range 3 {
		var found bool
		err := tx.QueryRow(ctx, `
			SELECT true FROM manifests WHERE repo_id = $1 AND digest = $2 FOR KEY SHARE`,
			id, string(m.Digest)).Scan(&found)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		if err := checkReferences(ctx, tx, id, m); err != nil {
			return err
		}
		// A concurrent push of the same digest may insert first: then this
		// does nothing, and the loop locks that row instead.
		tag, err := tx.Exec(ctx, `
			INSERT INTO manifests (repo_id, digest, media_type, content, artifact_type, subject, annotations, refs, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (repo_id, digest) DO NOTHING`,
			id, string(m.Digest), m.MediaType, nonNil(m.Content), m.ArtifactType, string(m.Subject),
			annotations, refs, m.Created)
		if err != nil {
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		if tag.RowsAffected() == 0 {
			continue
		}
		for _, ref := range m.References {
			if _, err := tx.Exec(ctx, `
				INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind) VALUES ($1, $2, $3, $4)
				ON CONFLICT DO NOTHING`,
				id, string(m.Digest), string(ref.Digest), string(ref.Kind)); err != nil {
				return fmt.Errorf("put manifest %s in %s: record reference %s: %w", m.Digest, m.Repository, ref.Digest, err)
			}
		}
		return nil
	}
	return fmt.Errorf("put manifest %s in %s: it was deleted and stored again by others three times meanwhile", m.Digest, m.Repository)
}

// checkReferences returns manifest_blob_unknown naming the first of m's
// references that repository id does not hold, and locks those it holds FOR
// KEY SHARE.
func checkReferences(ctx context.Context, tx pgx.Tx, id int64, m *berth.Manifest) error {
	for _, ref := range m.References {
		q := `SELECT true FROM blob_links WHERE repo_id = $1 AND digest = $2 FOR KEY SHARE`
		if ref.Kind == berth.ReferenceManifest {
			q = `SELECT true FROM manifests WHERE repo_id = $1 AND digest = $2 FOR KEY SHARE`
		}
		var ok bool
		err := tx.QueryRow(ctx, q, id, string(ref.Digest)).Scan(&ok)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return berth.Errorf(berth.CodeManifestBlobUnknown,
				"manifest %s references %s %s, which repository %s does not hold",
				m.Digest.Short(), ref.Kind, ref.Digest, m.Repository).
				WithHint("push the %s %s to %s before the manifest that references it", ref.Kind, ref.Digest.Short(), m.Repository).
				WithDetail("digest", string(ref.Digest))
		case err != nil:
			return fmt.Errorf("put manifest %s in %s: check %s %s: %w", m.Digest, m.Repository, ref.Kind, ref.Digest, err)
		}
	}
	return nil
}

// The pull path: one indexed query each, prepared once per connection.
const (
	findManifestByDigest = `
		SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations, m.refs, m.created
		FROM repositories r
		JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = $1 AND m.digest = $2`
	findManifestByTag = `
		SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations, m.refs, m.created
		FROM repositories r
		JOIN tags t ON t.repo_id = r.id
		JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		WHERE r.name = $1 AND t.name = $2`
)

// FindManifest returns the manifest that ref, a tag or a digest, names in
// repo, or manifest_unknown.
func (db *DB) FindManifest(ctx context.Context, repo, ref string) (*berth.Manifest, error) {
	q := findManifestByTag
	if berth.IsDigestReference(ref) {
		q = findManifestByDigest
	}
	m := &berth.Manifest{Repository: repo}
	var (
		digest, subject, refs string
		annotations           *string
	)
	err := db.pool.QueryRow(ctx, q, repo, ref).Scan(
		&digest, &m.MediaType, &m.Content, &m.ArtifactType, &subject, &annotations, &refs, &m.Created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, manifestUnknown(repo, ref)
	case err != nil:
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	m.Digest = berth.Digest(digest)
	m.Subject = berth.Digest(subject)
	m.Created = utc(m.Created)
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

// DeleteManifest removes the manifest, its references and every tag pointing
// at it, or returns manifest_unknown. It locks the manifest's row first, so a
// push tagging it meanwhile finishes before and its tag is deleted too.
// Manifests that reference or refer to it are left as they are.
func (db *DB) DeleteManifest(ctx context.Context, repo string, d berth.Digest) error {
	return db.inTx(ctx, "delete manifest", func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `
			SELECT m.repo_id FROM repositories r JOIN manifests m ON m.repo_id = r.id
			WHERE r.name = $1 AND m.digest = $2
			FOR UPDATE OF m`, repo, string(d)).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return manifestUnknown(repo, string(d))
		case err != nil:
			return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repo_id = $1 AND digest = $2`,
			`DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2`,
			`DELETE FROM manifests WHERE repo_id = $1 AND digest = $2`,
		} {
			if _, err := tx.Exec(ctx, q, id, string(d)); err != nil {
				return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
			}
		}
		return nil
	})
}

// DeleteTag removes one tag, leaving its manifest, or returns
// manifest_unknown.
func (db *DB) DeleteTag(ctx context.Context, repo, tag string) error {
	res, err := db.pool.Exec(ctx, `
		DELETE FROM tags
		WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2`, repo, tag)
	if err != nil {
		return fmt.Errorf("delete tag %s from %s: %w", tag, repo, err)
	}
	if res.RowsAffected() == 0 {
		return manifestUnknown(repo, tag)
	}
	return nil
}

// FindTags returns up to n of repo's tags in byte order, those after last
// when last is not empty; n < 0 means all. It returns name_unknown when the
// repository does not exist.
func (db *DB) FindTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	id, ok, err := repoID(ctx, db.pool, repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, berth.Errorf(berth.CodeNameUnknown, "repository %s does not exist", repo)
	}
	tags, err := collectStrings(db.pool.Query(ctx, `
		SELECT name FROM tags
		WHERE repo_id = $1 AND name > $2
		ORDER BY name
		LIMIT $3`, id, last, limit(n)))
	if err != nil {
		return nil, fmt.Errorf("find tags of %s: %w", repo, err)
	}
	return tags, nil
}

// FindRepositories returns up to n repository names in byte order, those
// after last when last is not empty; n < 0 means all.
func (db *DB) FindRepositories(ctx context.Context, last string, n int) ([]string, error) {
	names, err := collectStrings(db.pool.Query(ctx, `
		SELECT name FROM repositories
		WHERE name > $1
		ORDER BY name
		LIMIT $2`, last, limit(n)))
	if err != nil {
		return nil, fmt.Errorf("find repositories: %w", err)
	}
	return names, nil
}

// limit turns "n < 0 means all" into PostgreSQL's LIMIT, where NULL means no
// limit.
func limit(n int) *int64 {
	if n < 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// FindReferrers returns the descriptors of repo's manifests whose subject is
// d, only those of artifactType when it is not empty, ordered by digest. An
// unknown repository or subject has no referrers.
func (db *DB) FindReferrers(ctx context.Context, repo string, d berth.Digest, artifactType string) ([]berth.Descriptor, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT m.digest, m.media_type, length(m.content), m.artifact_type, m.annotations
		FROM repositories r
		JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = $1 AND m.subject = $2 AND m.subject <> ''
		  AND ($3 = '' OR m.artifact_type = $3)
		ORDER BY m.digest`, repo, string(d), artifactType)
	if err != nil {
		return nil, fmt.Errorf("find referrers of %s in %s: %w", d, repo, err)
	}
	defer rows.Close()
	descs := []berth.Descriptor{}
	for rows.Next() {
		var (
			desc        berth.Descriptor
			digest      string
			annotations *string
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
func encodeAnnotations(a map[string]string) (*string, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode annotations: %w", err)
	}
	s := string(b)
	return &s, nil
}

func decodeAnnotations(s *string) (map[string]string, error) {
	if s == nil {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal([]byte(*s), &a); err != nil {
		return nil, fmt.Errorf("decode annotations: %w", err)
	}
	return a, nil
}
