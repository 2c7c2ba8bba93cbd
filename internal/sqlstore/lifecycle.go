package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlcodec"
)

var _ berth.LifecycleStore = (*Store)(nil)

// PutImmutableRule stores r; conflict when its scope has the pattern already.
func (s *Store) PutImmutableRule(ctx context.Context, r berth.ImmutableRule) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO immutable_rules (scope, tags, created, created_by) VALUES ($1, $2, $3, $4)`,
		r.Scope.String(), r.Tags, r.Created, r.CreatedBy)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "tags %q are already immutable on %s", r.Tags, r.Scope)
	}
	if err != nil {
		return fmt.Errorf("put immutable rule: %w", err)
	}
	return nil
}

// FindImmutableRules returns every immutable-tag rule, by scope then pattern.
func (s *Store) FindImmutableRules(ctx context.Context) ([]berth.ImmutableRule, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT scope, tags, created, created_by FROM immutable_rules ORDER BY scope, tags`)
	out, err := collect(rows, err, func(r Rows) (berth.ImmutableRule, error) {
		var rule berth.ImmutableRule
		var scope string
		if err := r.Scan(&scope, &rule.Tags, Time(&rule.Created), &rule.CreatedBy); err != nil {
			return rule, err
		}
		var err error
		if rule.Scope, err = berth.ParseScope(scope); err != nil {
			return rule, fmt.Errorf("stored scope %q: %w", scope, err)
		}
		return rule, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find immutable rules: %w", err)
	}
	return out, nil
}

// DeleteImmutableRule removes one rule, or returns not_found.
func (s *Store) DeleteImmutableRule(ctx context.Context, scope berth.Scope, tags string) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM immutable_rules WHERE scope = $1 AND tags = $2`, scope.String(), tags)
	if err != nil {
		return fmt.Errorf("delete immutable rule: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no immutable-tag rule on %s has the pattern %q", scope, tags)
	}
	return nil
}

// PutRetentionRule stores r, replacing the rule on its scope.
func (s *Store) PutRetentionRule(ctx context.Context, r berth.RetentionRule) error {
	_, err := s.c.Write().Exec(ctx, `
		INSERT INTO retention_rules (scope, keep_last, tags, keep_tags, keep_pulled_within, untagged_after, updated, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (scope) DO UPDATE SET keep_last = excluded.keep_last, tags = excluded.tags, keep_tags = excluded.keep_tags,
			keep_pulled_within = excluded.keep_pulled_within, untagged_after = excluded.untagged_after,
			updated = excluded.updated, updated_by = excluded.updated_by`,
		r.Scope.String(), int64(r.KeepLast), r.Tags, r.KeepTags, int64(r.KeepPulledWithin/time.Second), int64(r.UntaggedAfter/time.Second), r.Updated, r.UpdatedBy)
	if err != nil {
		return fmt.Errorf("put retention rule: %w", err)
	}
	return nil
}

// FindRetentionRules returns every retention rule, by scope.
func (s *Store) FindRetentionRules(ctx context.Context) ([]berth.RetentionRule, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT scope, keep_last, tags, keep_tags, keep_pulled_within, untagged_after, updated, updated_by
		FROM retention_rules ORDER BY scope`)
	out, err := collect(rows, err, func(row Rows) (berth.RetentionRule, error) {
		var r berth.RetentionRule
		var scope string
		var keepLast, pulled, untagged int64
		if err := row.Scan(&scope, &keepLast, &r.Tags, &r.KeepTags, &pulled, &untagged, Time(&r.Updated), &r.UpdatedBy); err != nil {
			return r, err
		}
		var err error
		if r.Scope, err = berth.ParseScope(scope); err != nil {
			return r, fmt.Errorf("stored scope %q: %w", scope, err)
		}
		r.KeepLast, r.KeepPulledWithin, r.UntaggedAfter = int(keepLast), time.Duration(pulled)*time.Second, time.Duration(untagged)*time.Second
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find retention rules: %w", err)
	}
	return out, nil
}

// DeleteRetentionRule removes the rule on scope, or returns not_found.
func (s *Store) DeleteRetentionRule(ctx context.Context, scope berth.Scope) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM retention_rules WHERE scope = $1`, scope.String())
	if err != nil {
		return fmt.Errorf("delete retention rule: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no retention rule is set on %s", scope)
	}
	return nil
}

// PutQuota stores q, replacing the quota on its scope.
func (s *Store) PutQuota(ctx context.Context, q berth.Quota) error {
	_, err := s.c.Write().Exec(ctx, `
		INSERT INTO quotas (scope, max_size, max_repositories, updated, updated_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scope) DO UPDATE SET max_size = excluded.max_size, max_repositories = excluded.max_repositories,
			updated = excluded.updated, updated_by = excluded.updated_by`,
		q.Scope.String(), q.MaxSize, int64(q.MaxRepositories), q.Updated, q.UpdatedBy)
	if err != nil {
		return fmt.Errorf("put quota: %w", err)
	}
	return nil
}

// FindQuotas returns every quota, by scope.
func (s *Store) FindQuotas(ctx context.Context) ([]berth.Quota, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT scope, max_size, max_repositories, updated, updated_by FROM quotas ORDER BY scope`)
	out, err := collect(rows, err, func(row Rows) (berth.Quota, error) {
		var q berth.Quota
		var scope string
		var repos int64
		if err := row.Scan(&scope, &q.MaxSize, &repos, Time(&q.Updated), &q.UpdatedBy); err != nil {
			return q, err
		}
		var err error
		if q.Scope, err = berth.ParseScope(scope); err != nil {
			return q, fmt.Errorf("stored scope %q: %w", scope, err)
		}
		q.MaxRepositories = int(repos)
		return q, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find quotas: %w", err)
	}
	return out, nil
}

// DeleteQuota removes the quota on scope, or returns not_found.
func (s *Store) DeleteQuota(ctx context.Context, scope berth.Scope) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM quotas WHERE scope = $1`, scope.String())
	if err != nil {
		return fmt.Errorf("delete quota: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no quota is set on %s", scope)
	}
	return nil
}

// scopeRepos returns a condition on r.name selecting the repositories scope
// covers, and its arguments numbered from $first. A namespace "team" covers
// the names from "team/" up to, not including, "team0" ('0' follows '/' in
// byte order), which keys compare as bytes on both engines.
func scopeRepos(scope berth.Scope, first int) (string, []any) {
	switch scope.Kind() {
	case berth.ScopeNamespace:
		return fmt.Sprintf("r.name >= $%d AND r.name < $%d", first, first+1), []any{scope.Name() + "/", scope.Name() + "0"}
	case berth.ScopeRepository:
		return fmt.Sprintf("r.name = $%d", first), []any{scope.Name()}
	}
	return "TRUE", nil
}

// QuotaUsage returns the bytes of the distinct blobs the repositories of
// scope link, and how many repositories it holds.
func (s *Store) QuotaUsage(ctx context.Context, scope berth.Scope) (berth.QuotaUsage, error) {
	cond, args := scopeRepos(scope, 1)
	var u berth.QuotaUsage
	var repos int64
	err := s.c.Read().QueryRow(ctx, `
		SELECT (SELECT COALESCE(SUM(size), 0) FROM (
				SELECT DISTINCT bl.digest, bl.size FROM blob_links bl JOIN repositories r ON r.id = bl.repo_id WHERE `+cond+`) AS held),
			(SELECT count(*) FROM repositories r WHERE `+cond+`)`, args...).Scan(&u.Bytes, &repos)
	if err != nil {
		return berth.QuotaUsage{}, fmt.Errorf("quota usage of %s: %w", scope, err)
	}
	u.Repositories = int(repos)
	return u, nil
}

// ScopeHoldsBlob reports whether a repository scope covers links d.
func (s *Store) ScopeHoldsBlob(ctx context.Context, scope berth.Scope, d berth.Digest) (bool, error) {
	cond, args := scopeRepos(scope, 2)
	var held bool
	err := s.c.Read().QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM blob_links bl JOIN repositories r ON r.id = bl.repo_id WHERE bl.digest = $1 AND `+cond+`)`,
		append([]any{string(d)}, args...)...).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("find blob %s in %s: %w", d, scope, err)
	}
	return held, nil
}

// RecordTagPush records p as the latest push of its tag.
func (s *Store) RecordTagPush(ctx context.Context, p berth.TagPush) error {
	_, err := s.c.Write().Exec(ctx, `
		INSERT INTO tag_pushes (repository, tag, digest, pushed, pushed_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, pushed = excluded.pushed, pushed_by = excluded.pushed_by`,
		p.Repository, p.Tag, string(p.Digest), p.Pushed, p.PushedBy)
	if err != nil {
		return fmt.Errorf("record push of %s:%s: %w", p.Repository, p.Tag, err)
	}
	return nil
}

// FindTagPush returns the latest recorded push of repo:tag, or not_found.
func (s *Store) FindTagPush(ctx context.Context, repo, tag string) (berth.TagPush, error) {
	p := berth.TagPush{Repository: repo, Tag: tag}
	var d string
	err := s.c.Read().QueryRow(ctx, `SELECT digest, pushed, pushed_by FROM tag_pushes WHERE repository = $1 AND tag = $2`, repo, tag).
		Scan(&d, Time(&p.Pushed), &p.PushedBy)
	if IsNoRows(err) {
		return berth.TagPush{}, berth.Errorf(berth.CodeNotFound, "no push of %s:%s is recorded", repo, tag)
	}
	if err != nil {
		return berth.TagPush{}, fmt.Errorf("find push of %s:%s: %w", repo, tag, err)
	}
	p.Digest = berth.Digest(d)
	return p, nil
}

// RecordPulls records the pulls in one transaction, keeping the latest time
// of each manifest.
func (s *Store) RecordPulls(ctx context.Context, pulls []berth.ManifestPull) error {
	if len(pulls) == 0 {
		return nil
	}
	return s.inTx(ctx, "record pulls", func(tx Querier) error {
		for _, p := range pulls {
			if _, err := tx.Exec(ctx, `
				INSERT INTO manifest_pulls (repository, digest, pulled) VALUES ($1, $2, $3)
				ON CONFLICT (repository, digest) DO UPDATE SET pulled = excluded.pulled WHERE manifest_pulls.pulled < excluded.pulled`,
				p.Repository, string(p.Digest), p.Time); err != nil {
				return fmt.Errorf("record pull of %s@%s: %w", p.Repository, p.Digest, err)
			}
		}
		return nil
	})
}

// FindRetentionImages returns every manifest of repo with its size (its own
// bytes and those of the blobs it references), tags with their push times
// (the manifest's Created where no push of the tag to it is recorded), last
// pull, subject and the manifests it lists.
func (s *Store) FindRetentionImages(ctx context.Context, repo string) ([]berth.RetentionImage, error) {
	q := s.c.Read()
	var repoID int64
	if err := q.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, repo).Scan(&repoID); IsNoRows(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("retention images of %s: %w", repo, err)
	}
	var images []berth.RetentionImage
	index := map[berth.Digest]int{}
	rows, err := q.Query(ctx, `
		SELECT m.digest, m.created, m.subject, m.refs, length(m.content),
			COALESCE((SELECT SUM(bl.size) FROM manifest_refs mr JOIN blob_links bl ON bl.repo_id = mr.repo_id AND bl.digest = mr.ref_digest
				WHERE mr.repo_id = m.repo_id AND mr.manifest_digest = m.digest AND mr.kind = 'blob'), 0),
			p.pulled
		FROM manifests m LEFT JOIN manifest_pulls p ON p.repository = $2 AND p.digest = m.digest
		WHERE m.repo_id = $1 ORDER BY m.created, m.digest`, repoID, repo)
	if err != nil {
		return nil, fmt.Errorf("retention images of %s: %w", repo, err)
	}
	defer rows.Close()
	for rows.Next() {
		var im berth.RetentionImage
		var d, subject, refs string
		var own, blobs int64
		var pulled *time.Time
		if err := rows.Scan(&d, Time(&im.Created), &subject, &refs, &own, &blobs, NullTime(&pulled)); err != nil {
			return nil, fmt.Errorf("retention images of %s: %w", repo, err)
		}
		im.Digest, im.Subject, im.Size = berth.Digest(d), berth.Digest(subject), own+blobs
		if pulled != nil {
			im.LastPulled = *pulled
		}
		list, err := sqlcodec.DecodeReferences(refs)
		if err != nil {
			return nil, fmt.Errorf("retention images of %s: manifest %s: %w", repo, d, err)
		}
		for _, r := range list {
			if r.Kind == berth.ReferenceManifest {
				im.Children = append(im.Children, r.Digest)
			}
		}
		index[im.Digest] = len(images)
		images = append(images, im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention images of %s: %w", repo, err)
	}
	rows.Close()

	tags, err := q.Query(ctx, `
		SELECT t.name, t.digest, p.digest, p.pushed, p.pushed_by
		FROM tags t LEFT JOIN tag_pushes p ON p.repository = $2 AND p.tag = t.name
		WHERE t.repo_id = $1 ORDER BY t.name`, repoID, repo)
	if err != nil {
		return nil, fmt.Errorf("retention tags of %s: %w", repo, err)
	}
	defer tags.Close()
	for tags.Next() {
		var name, d string
		var pushedDigest, pushedBy *string
		var pushed *time.Time
		if err := tags.Scan(&name, &d, &pushedDigest, NullTime(&pushed), &pushedBy); err != nil {
			return nil, fmt.Errorf("retention tags of %s: %w", repo, err)
		}
		i, ok := index[berth.Digest(d)]
		if !ok {
			continue
		}
		t := berth.TagPush{Repository: repo, Tag: name, Digest: berth.Digest(d), Pushed: images[i].Created}
		if pushedDigest != nil && *pushedDigest == d && pushed != nil {
			t.Pushed = *pushed
			if pushedBy != nil {
				t.PushedBy = *pushedBy
			}
		}
		images[i].Tags = append(images[i].Tags, t)
	}
	return images, tags.Err()
}

// DeleteImageIfUnchanged deletes manifest d of repo with its tags, in one
// transaction, only if its tags are still exactly tags and no manifest of
// repo lists it or refers to it; it reports whether it did.
func (s *Store) DeleteImageIfUnchanged(ctx context.Context, repo string, d berth.Digest, tags []string) (bool, error) {
	deleted := false
	err := s.inTx(ctx, "retention delete", func(tx Querier) error {
		// Only the manifest's row is locked: its repository's row is what
		// every push into the repository reads, and locking it would make a
		// concurrent push wait on this delete while holding what it needs.
		var repoID int64
		err := tx.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, repo).Scan(&repoID)
		if IsNoRows(err) {
			return nil // gone already
		} else if err != nil {
			return err
		}
		var found bool
		err = tx.QueryRow(ctx, `SELECT true FROM manifests WHERE repo_id = $1 AND digest = $2`+s.d.ForUpdate, repoID, string(d)).Scan(&found)
		if IsNoRows(err) {
			return nil // gone already
		} else if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name FROM tags WHERE repo_id = $1 AND digest = $2 ORDER BY name`, repoID, string(d))
		if err != nil {
			return err
		}
		var now []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			now = append(now, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		want := slices.Clone(tags)
		slices.Sort(want)
		if !slices.Equal(now, want) {
			return nil // tagged or untagged since the plan
		}
		var needed bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = $1 AND ref_digest = $2 AND kind = 'manifest')
				OR EXISTS (SELECT 1 FROM manifests WHERE repo_id = $1 AND subject = $2)`, repoID, string(d)).Scan(&needed); err != nil {
			return err
		}
		if needed {
			return nil // an index or a referrer pushed since the plan needs it
		}
		if err := s.deleteManifestRows(ctx, tx, repoID, d); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM manifest_pulls WHERE repository = $1 AND digest = $2`, repo, string(d)); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("retention delete %s@%s: %w", repo, d, err)
	}
	return deleted, nil
}
