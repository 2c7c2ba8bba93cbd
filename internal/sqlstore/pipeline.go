package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth"
)

// CI pipelines (berth.PipelineStore), in the tables of migration 0006. The
// store keeps a pipeline as the domain validated it; matching a token against
// it is package berth's.

var _ berth.PipelineStore = (*Store)(nil)

const pipelineColumns = `id, name, issuer, subject, audience, claims, jwks, preset, created`

func scanPipeline(row Row) (berth.Pipeline, error) {
	var (
		p      berth.Pipeline
		claims *string
		jwks   []byte
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Issuer, &p.Subject, &p.Audience, &claims, &jwks, &p.Preset, Time(&p.Created)); err != nil {
		return berth.Pipeline{}, err
	}
	if claims != nil {
		// Written by json.Marshal of a map[string]string: unreadable only
		// when edited by hand, which is internal: hence %v.
		if err := json.Unmarshal([]byte(*claims), &p.Claims); err != nil {
			return berth.Pipeline{}, fmt.Errorf("stored claims of pipeline %s: %v", p.Name, err)
		}
	}
	if jwks != nil {
		p.JWKS = json.RawMessage(jwks)
	}
	return p, nil
}

// UpdatePipelineKeys sets the pipeline's pinned key set (NULL for nil), or
// returns not_found.
func (s *Store) UpdatePipelineKeys(ctx context.Context, id string, jwks json.RawMessage) error {
	var b []byte // NULL: the issuer's published keys
	if jwks != nil {
		b = NonNil([]byte(jwks))
	}
	n, err := s.c.Write().Exec(ctx, `UPDATE pipelines SET jwks = $2 WHERE id = $1`, id, b)
	if err != nil {
		return fmt.Errorf("update the keys of pipeline %s: %w", id, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no pipeline has the id %s", id)
	}
	return nil
}

// CreatePipeline stores p, or returns conflict, changing nothing, when a
// pipeline with its ID or Name exists.
func (s *Store) CreatePipeline(ctx context.Context, p berth.Pipeline) error {
	var claims *string
	if len(p.Claims) > 0 {
		b, err := json.Marshal(p.Claims)
		if err != nil {
			return fmt.Errorf("create pipeline %s: %w", p.Name, err)
		}
		str := string(b)
		claims = &str
	}
	var jwks []byte // NULL when the pipeline has no key set of its own
	if p.JWKS != nil {
		jwks = NonNil([]byte(p.JWKS))
	}
	_, err := s.c.Write().Exec(ctx,
		`INSERT INTO pipelines (`+pipelineColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.Name, p.Issuer, p.Subject, p.Audience, claims, jwks, p.Preset, p.Created)
	switch {
	case s.d.IsUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "a pipeline named %s or with id %s exists", p.Name, p.ID).
			WithDetail("pipeline", p.Name)
	case err != nil:
		return fmt.Errorf("create pipeline %s: %w", p.Name, err)
	}
	return nil
}

// FindPipelineByID returns the pipeline with this ID, or not_found.
func (s *Store) FindPipelineByID(ctx context.Context, id string) (berth.Pipeline, error) {
	return s.findPipeline(ctx, "id", id)
}

// FindPipelineByName returns the pipeline with this name, or not_found.
func (s *Store) FindPipelineByName(ctx context.Context, name string) (berth.Pipeline, error) {
	return s.findPipeline(ctx, "name", name)
}

// findPipeline looks a pipeline up by one unique column; column is "id" or
// "name", never input.
func (s *Store) findPipeline(ctx context.Context, column, value string) (berth.Pipeline, error) {
	p, err := scanPipeline(s.c.Read().QueryRow(ctx,
		`SELECT `+pipelineColumns+` FROM pipelines WHERE `+column+` = $1`, value))
	switch {
	case IsNoRows(err):
		return berth.Pipeline{}, pipelineNotFound(column, value)
	case err != nil:
		return berth.Pipeline{}, fmt.Errorf("find pipeline by %s %s: %w", column, value, err)
	}
	return p, nil
}

func pipelineNotFound(column, value string) *berth.Error {
	if column == "name" {
		return berth.Errorf(berth.CodeNotFound, "no pipeline is named %s", value).WithDetail("pipeline", value)
	}
	return berth.Errorf(berth.CodeNotFound, "no pipeline has id %s", value)
}

// FindPipelines returns the pipelines f selects, ordered by name; an empty
// slice when none is.
func (s *Store) FindPipelines(ctx context.Context, f berth.PipelineFilter) ([]berth.Pipeline, error) {
	q, args := `SELECT `+pipelineColumns+` FROM pipelines`, []any{}
	if f.Issuer != "" {
		q, args = q+` WHERE issuer = $1`, append(args, f.Issuer)
	}
	rows, err := s.c.Read().Query(ctx, q+` ORDER BY name`, args...)
	out, err := collect(rows, err, func(r Rows) (berth.Pipeline, error) { return scanPipeline(r) })
	if err != nil {
		return nil, fmt.Errorf("find pipelines: %w", err)
	}
	return out, nil
}

// DeletePipeline removes the pipeline, its permissions on every connection
// and its pending permission requests in one transaction, or returns
// not_found. It locks the pipeline's row first (on PostgreSQL), so a concurrent permit or
// request either lands before and is deleted, or after and is refused.
func (s *Store) DeletePipeline(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete pipeline", func(tx Querier) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT true FROM pipelines WHERE id = $1`+s.d.ForUpdate, id).Scan(&ok)
		switch {
		case IsNoRows(err):
			return pipelineNotFound("id", id)
		case err != nil:
			return fmt.Errorf("delete pipeline %s: %w", id, err)
		}
		for _, q := range []string{
			`DELETE FROM connection_pipelines WHERE pipeline_id = $1`,
			`DELETE FROM permission_requests WHERE pipeline_id = $1`,
			`DELETE FROM pipelines WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("delete pipeline %s: %w", id, err)
			}
		}
		return nil
	})
}

// lockPipeline returns not_found unless a pipeline has this id, and keeps
// its row locked FOR KEY SHARE until tx ends (on PostgreSQL).
func (s *Store) lockPipeline(ctx context.Context, tx Querier, id string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM pipelines WHERE id = $1`+s.d.ForKeyShare, id).Scan(&ok)
	switch {
	case IsNoRows(err):
		return pipelineNotFound("id", id)
	case err != nil:
		return fmt.Errorf("find pipeline %s: %w", id, err)
	}
	return nil
}
