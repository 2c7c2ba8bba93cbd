package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

const upstreamColumns = `name, url, namespace, username, password, tag_ttl, max_size, expires, created`

// CreateUpstream stores u as it is given (its password sealed by the
// caller); conflict when its name or namespace is taken.
func (s *Store) CreateUpstream(ctx context.Context, u berth.Upstream) error {
	var expires any // NULL
	if u.ExpiresAt != nil {
		expires = *u.ExpiresAt
	}
	_, err := s.c.Write().Exec(ctx, `INSERT INTO upstreams (`+upstreamColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.Name, u.URL, u.Namespace, u.Username, u.Password.Reveal(), int64(u.TagTTL/time.Second), u.MaxSize, expires, u.Created)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "an upstream named %s, or with namespace %s, exists", u.Name, u.Namespace)
	}
	if err != nil {
		return fmt.Errorf("create upstream: %w", err)
	}
	return nil
}

// FindUpstream returns the upstream called name, or not_found.
func (s *Store) FindUpstream(ctx context.Context, name string) (berth.Upstream, error) {
	u, err := scanUpstream(s.c.Read().QueryRow(ctx, `SELECT `+upstreamColumns+` FROM upstreams WHERE name = $1`, name))
	if IsNoRows(err) {
		return u, berth.Errorf(berth.CodeNotFound, "no upstream is named %s", name)
	}
	if err != nil {
		return u, fmt.Errorf("find upstream: %w", err)
	}
	return u, nil
}

// FindUpstreams returns every upstream, ordered by name.
func (s *Store) FindUpstreams(ctx context.Context) ([]berth.Upstream, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT `+upstreamColumns+` FROM upstreams ORDER BY name`)
	out, err := collect(rows, err, func(r Rows) (berth.Upstream, error) { return scanUpstream(r) })
	if err != nil {
		return nil, fmt.Errorf("find upstreams: %w", err)
	}
	return out, nil
}

// UpdateUpstream stores u over the upstream of its name, all but its
// namespace and creation time (its password sealed by the caller), or
// returns not_found.
func (s *Store) UpdateUpstream(ctx context.Context, u berth.Upstream) error {
	var expires any // NULL
	if u.ExpiresAt != nil {
		expires = *u.ExpiresAt
	}
	n, err := s.c.Write().Exec(ctx, `UPDATE upstreams SET url = $2, username = $3, password = $4, tag_ttl = $5, max_size = $6, expires = $7 WHERE name = $1`,
		u.Name, u.URL, u.Username, u.Password.Reveal(), int64(u.TagTTL/time.Second), u.MaxSize, expires)
	if err != nil {
		return fmt.Errorf("update upstream: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no upstream is named %s", u.Name)
	}
	return nil
}

// DeleteUpstream removes the upstream called name, or returns not_found.
func (s *Store) DeleteUpstream(ctx context.Context, name string) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM upstreams WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete upstream: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no upstream is named %s", name)
	}
	return nil
}

func scanUpstream(row interface{ Scan(...any) error }) (berth.Upstream, error) {
	var u berth.Upstream
	var password string
	var ttl int64
	err := row.Scan(&u.Name, &u.URL, &u.Namespace, &u.Username, &password, &ttl, &u.MaxSize, NullTime(&u.ExpiresAt), Time(&u.Created))
	u.Password = berth.UpstreamPasswordOf(password)
	u.TagTTL = time.Duration(ttl) * time.Second
	return u, err
}
