package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"

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
// On PostgreSQL the rows checked are locked FOR KEY SHARE until the commit:
// garbage collection and DeleteManifest lock what they delete FOR UPDATE, so
// they either finish first (and the check fails, or the manifest is stored
// anew) or wait for this push and then see its references and its tag. On
// SQLite the write transaction alone orders them.
func (s *Store) PutManifest(ctx context.Context, m *berth.Manifest, tag string) error {
	return s.putManifest(ctx, m, tag, putOptions{})
}

// PutManifestKeepingTag is PutManifest, except that when tag points at
// another manifest it returns tag_immutable and changes nothing: the check
// and the tag are one transaction, so of two pushes racing to create an
// immutable tag one wins and the other is refused.
func (s *Store) PutManifestKeepingTag(ctx context.Context, m *berth.Manifest, tag string) error {
	return s.putManifest(ctx, m, tag, putOptions{keepTag: true})
}

// PutCachedManifest is PutManifest, except that the manifests m references
// need not be in the repository: the pull-through cache stores an index
// whose children its clients have not all pulled. Its blob references are
// checked as PutManifest checks them. Every reference is recorded in
// manifest_refs, the missing children's too (nothing there refers to the
// manifests table by ref_digest), so a child stored later is referenced
// from that moment: retention and eviction keep it while the index stays.
func (s *Store) PutCachedManifest(ctx context.Context, m *berth.Manifest, tag string) error {
	return s.putManifest(ctx, m, tag, putOptions{childrenMayBeMissing: true})
}

// putOptions are what set the three ways of storing a manifest apart.
type putOptions struct {
	keepTag              bool // tag_immutable rather than moving tag
	childrenMayBeMissing bool // the manifests m references are not checked
}

func (s *Store) putManifest(ctx context.Context, m *berth.Manifest, tag string, opt putOptions) error {
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
	return s.inTx(ctx, "put manifest", func(tx Querier) error {
		id, err := ensureRepo(ctx, tx, m.Repository, m.Created)
		if err != nil {
			return err
		}
		if err := s.keepOrInsertManifest(ctx, tx, id, m, annotations, refs, opt.childrenMayBeMissing); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		if opt.keepTag {
			n, err := tx.Exec(ctx, `
				INSERT INTO tags (repo_id, name, digest) VALUES ($1, $2, $3)
				ON CONFLICT (repo_id, name) DO NOTHING`,
				id, tag, string(m.Digest))
			if err != nil {
				return fmt.Errorf("tag manifest %s in %s as %s: %w", m.Digest, m.Repository, tag, err)
			}
			if n > 0 {
				return nil
			}
			var held string
			if err := tx.QueryRow(ctx, `SELECT digest FROM tags WHERE repo_id = $1 AND name = $2`+s.d.ForKeyShare, id, tag).Scan(&held); err != nil {
				return fmt.Errorf("tag manifest %s in %s as %s: %w", m.Digest, m.Repository, tag, err)
			}
			if held != string(m.Digest) {
				return berth.Errorf(berth.CodeTagImmutable, "tag %s:%s holds %s and is kept there", m.Repository, tag, held).
					WithDetail("digest", held)
			}
			return nil
		}
		// The tag may have moved: the read caches must not serve where it was.
		if _, err := tx.Exec(ctx, `
			INSERT INTO tags (repo_id, name, digest) VALUES ($1, $2, $3)
			ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest`,
			id, tag, string(m.Digest)); err != nil {
			return fmt.Errorf("tag manifest %s in %s as %s: %w", m.Digest, m.Repository, tag, err)
		}
		return s.c.Changed(ctx, tx)
	})
}

// keepOrInsertManifest leaves the transaction holding m's row in repository
// id (locked FOR KEY SHARE on PostgreSQL): the stored one when there is one,
// else m, stored with its references after checking them (its blobs only
// when childrenMayBeMissing). A stored row deleted meanwhile by a
// DeleteManifest that held it is inserted again.
func (s *Store) keepOrInsertManifest(ctx context.Context, tx Querier, id int64, m *berth.Manifest, annotations *string, refs string, childrenMayBeMissing bool) error {
	for range 3 {
		var found bool
		err := tx.QueryRow(ctx, `
			SELECT true FROM manifests WHERE repo_id = $1 AND digest = $2`+s.d.ForKeyShare,
			id, string(m.Digest)).Scan(&found)
		switch {
		case err == nil:
			return nil
		case !IsNoRows(err):
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		if err := s.checkReferences(ctx, tx, id, m, childrenMayBeMissing); err != nil {
			return err
		}
		// A concurrent push of the same digest may insert first: then this
		// does nothing, and the loop locks that row instead.
		tag, err := tx.Exec(ctx, `
			INSERT INTO manifests (repo_id, digest, media_type, content, artifact_type, subject, annotations, refs, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (repo_id, digest) DO NOTHING`,
			id, string(m.Digest), m.MediaType, NonNil(m.Content), m.ArtifactType, string(m.Subject),
			annotations, refs, m.Created)
		if err != nil {
			return fmt.Errorf("put manifest %s in %s: %w", m.Digest, m.Repository, err)
		}
		if tag == 0 {
			continue // SQLite's one writer never gets here
		}
		if s.d.Arrays {
			if err := insertRefs(ctx, tx, id, m); err != nil {
				return err
			}
			return nil
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

// insertRefs records every reference of m in one statement (Dialect.Arrays).
func insertRefs(ctx context.Context, tx Querier, id int64, m *berth.Manifest) error {
	if len(m.References) == 0 {
		return nil
	}
	digests, kinds := make([]string, len(m.References)), make([]string, len(m.References))
	for i, ref := range m.References {
		digests[i], kinds[i] = string(ref.Digest), string(ref.Kind)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind)
		SELECT $1, $2, d, k FROM unnest($3::text[], $4::text[]) AS u(d, k)
		ON CONFLICT DO NOTHING`,
		id, string(m.Digest), digests, kinds); err != nil {
		return fmt.Errorf("put manifest %s in %s: record %d references: %w", m.Digest, m.Repository, len(digests), err)
	}
	return nil
}

// checkReferences returns manifest_blob_unknown naming the first of m's
// references that repository id does not hold, and locks those it holds FOR
// KEY SHARE on PostgreSQL. With childrenMayBeMissing it looks at blob
// references only: a child manifest need not be there, so neither it nor
// its deletion concerns this put. Where the engine takes arrays
// (Dialect.Arrays) it checks all the blobs in one statement and all the
// manifests in another, rather than one statement per reference.
func (s *Store) checkReferences(ctx context.Context, tx Querier, id int64, m *berth.Manifest, childrenMayBeMissing bool) error {
	if s.d.Arrays {
		return s.checkReferencesAtOnce(ctx, tx, id, m, childrenMayBeMissing)
	}
	for _, ref := range m.References {
		if childrenMayBeMissing && ref.Kind == berth.ReferenceManifest {
			continue
		}
		q := `SELECT true FROM blob_links WHERE repo_id = $1 AND digest = $2` + s.d.ForKeyShare
		if ref.Kind == berth.ReferenceManifest {
			q = `SELECT true FROM manifests WHERE repo_id = $1 AND digest = $2` + s.d.ForKeyShare
		}
		var ok bool
		err := tx.QueryRow(ctx, q, id, string(ref.Digest)).Scan(&ok)
		switch {
		case IsNoRows(err):
			return referenceUnknown(m, ref)
		case err != nil:
			return fmt.Errorf("put manifest %s in %s: check %s %s: %w", m.Digest, m.Repository, ref.Kind, ref.Digest, err)
		}
	}
	return nil
}

// checkReferencesAtOnce is checkReferences in a statement per table.
func (s *Store) checkReferencesAtOnce(ctx context.Context, tx Querier, id int64, m *berth.Manifest, childrenMayBeMissing bool) error {
	var blobs, manifests []string
	for _, ref := range m.References {
		switch {
		case ref.Kind != berth.ReferenceManifest:
			blobs = append(blobs, string(ref.Digest))
		case !childrenMayBeMissing:
			manifests = append(manifests, string(ref.Digest))
		}
	}
	// A digest held as a blob is not a manifest held, nor the reverse.
	heldBlobs, err := s.heldAmong(ctx, tx, `SELECT digest FROM blob_links WHERE repo_id = $1 AND digest = ANY($2::text[])`, id, blobs)
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: check its blobs: %w", m.Digest, m.Repository, err)
	}
	heldManifests, err := s.heldAmong(ctx, tx, `SELECT digest FROM manifests WHERE repo_id = $1 AND digest = ANY($2::text[])`, id, manifests)
	if err != nil {
		return fmt.Errorf("put manifest %s in %s: check its manifests: %w", m.Digest, m.Repository, err)
	}
	for _, ref := range m.References {
		switch {
		case ref.Kind != berth.ReferenceManifest && !heldBlobs[string(ref.Digest)],
			ref.Kind == berth.ReferenceManifest && !childrenMayBeMissing && !heldManifests[string(ref.Digest)]:
			return referenceUnknown(m, ref)
		}
	}
	return nil
}

// heldAmong returns which of digests query, of repository id and the
// digests, finds, locking their rows FOR KEY SHARE.
func (s *Store) heldAmong(ctx context.Context, tx Querier, query string, id int64, digests []string) (map[string]bool, error) {
	held := map[string]bool{}
	if len(digests) == 0 {
		return held, nil
	}
	found, err := collectStrings(tx.Query(ctx, query+s.d.ForKeyShare, id, digests))
	for _, d := range found {
		held[d] = true
	}
	return held, err
}

// referenceUnknown is manifest_blob_unknown for ref, which m references and
// its repository does not hold.
func referenceUnknown(m *berth.Manifest, ref berth.Reference) error {
	return berth.Errorf(berth.CodeManifestBlobUnknown,
		"manifest %s references %s %s, which repository %s does not hold",
		m.Digest.Short(), ref.Kind, ref.Digest, m.Repository).
		WithHint("push the %s %s to %s before the manifest that references it", ref.Kind, ref.Digest.Short(), m.Repository).
		WithDetail("digest", string(ref.Digest))
}

// The pull path: one indexed query each, prepared once per connection (by
// pgx's statement cache; by the SQLite adapter's).
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

// findManifest is FindManifest's query.
func (s *Store) findManifest(ctx context.Context, repo, ref string) (*berth.Manifest, error) {
	q := findManifestByTag
	if berth.IsDigestReference(ref) {
		q = findManifestByDigest
	}
	// One allocation holds the manifest and every column scanned apart
	// from it, which would each escape to the heap on their own.
	row := &struct {
		m                     berth.Manifest
		digest, subject, refs string
		annotations           sql.NullString // not *string: no reflection in database/sql's Scan
	}{m: berth.Manifest{Repository: repo}}
	m := &row.m
	digest, subject, refs, annotations := &row.digest, &row.subject, &row.refs, &row.annotations
	err := s.c.Read().QueryRow(pointRead(ctx), q, repo, ref).Scan(
		digest, &m.MediaType, &m.Content, &m.ArtifactType, subject, annotations, refs, Time(&m.Created))
	switch {
	case IsNoRows(err):
		return nil, manifestUnknown(repo, ref)
	case err != nil:
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	m.Digest = berth.Digest(*digest)
	m.Subject = berth.Digest(*subject)
	if m.Annotations, err = decodeAnnotations(*annotations); err != nil {
		return nil, fmt.Errorf("find manifest %s in %s: %w", ref, repo, err)
	}
	if m.References, err = sqlcodec.DecodeReferences(*refs); err != nil {
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
func (s *Store) DeleteManifest(ctx context.Context, repo string, d berth.Digest) error {
	return s.inTx(ctx, "delete manifest", func(tx Querier) error {
		var id int64
		err := tx.QueryRow(ctx, `
			SELECT m.repo_id FROM repositories r JOIN manifests m ON m.repo_id = r.id
			WHERE r.name = $1 AND m.digest = $2`+s.d.ForUpdateOf("m"), repo, string(d)).Scan(&id)
		switch {
		case IsNoRows(err):
			return manifestUnknown(repo, string(d))
		case err != nil:
			return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
		}
		if err := s.deleteManifestRows(ctx, tx, id, d); err != nil {
			return fmt.Errorf("delete manifest %s from %s: %w", d, repo, err)
		}
		return nil
	})
}

// deleteManifestRows deletes manifest d of repository id, its references
// and its tags, in tx, and announces the change to the read caches.
func (s *Store) deleteManifestRows(ctx context.Context, tx Querier, id int64, d berth.Digest) error {
	for _, q := range []string{
		`DELETE FROM tags WHERE repo_id = $1 AND digest = $2`,
		`DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2`,
		`DELETE FROM manifests WHERE repo_id = $1 AND digest = $2`,
	} {
		if _, err := tx.Exec(ctx, q, id, string(d)); err != nil {
			return err
		}
	}
	return s.c.Changed(ctx, tx)
}

// DeleteTag removes one tag, leaving its manifest, or returns
// manifest_unknown.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	// In a transaction, so that the read caches are told exactly when the
	// deletion commits.
	return s.inTx(ctx, "delete tag", func(tx Querier) error {
		res, err := tx.Exec(ctx, `
			DELETE FROM tags
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2`, repo, tag)
		if err != nil {
			return fmt.Errorf("delete tag %s from %s: %w", tag, repo, err)
		}
		if res == 0 {
			return manifestUnknown(repo, tag)
		}
		return s.c.Changed(ctx, tx)
	})
}

// FindTags returns up to n of repo's tags in byte order, those after last
// when last is not empty; n < 0 means all. It returns name_unknown when the
// repository does not exist.
func (s *Store) FindTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	id, ok, err := repoID(ctx, s.c.Read(), repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, berth.Errorf(berth.CodeNameUnknown, "repository %s does not exist", repo)
	}
	tags, err := collectStrings(s.c.Read().Query(ctx, `
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
func (s *Store) FindRepositories(ctx context.Context, last string, n int) ([]string, error) {
	names, err := collectStrings(s.c.Read().Query(ctx, `
		SELECT name FROM repositories
		WHERE name > $1
		ORDER BY name
		LIMIT $2`, last, limit(n)))
	if err != nil {
		return nil, fmt.Errorf("find repositories: %w", err)
	}
	return names, nil
}

// limit turns "n < 0 means all" into a LIMIT both engines read: the
// largest bigint for all (SQLite's -1 and PostgreSQL's NULL are each the
// other's error).
func limit(n int) int64 {
	if n < 0 {
		return math.MaxInt64
	}
	return int64(n)
}

// FindReferrers returns the descriptors of repo's manifests whose subject is
// d, only those of artifactType when it is not empty, ordered by digest. An
// unknown repository or subject has no referrers.
func (s *Store) FindReferrers(ctx context.Context, repo string, d berth.Digest, artifactType string) ([]berth.Descriptor, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT m.digest, m.media_type, length(m.content), m.artifact_type, m.annotations
		FROM repositories r
		JOIN manifests m ON m.repo_id = r.id
		WHERE r.name = $1 AND m.subject = $2 AND m.subject <> ''
		  AND ($3 = '' OR m.artifact_type = $3)
		ORDER BY m.digest`, repo, string(d), artifactType)
	descs, err := collect(rows, err, func(r Rows) (berth.Descriptor, error) {
		var (
			desc        berth.Descriptor
			digest      string
			annotations sql.NullString
		)
		if err := r.Scan(&digest, &desc.MediaType, &desc.Size, &desc.ArtifactType, &annotations); err != nil {
			return desc, err
		}
		desc.Digest = berth.Digest(digest)
		var err error
		desc.Annotations, err = decodeAnnotations(annotations)
		return desc, err
	})
	if err != nil {
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
	str := string(b)
	return &str, nil
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
