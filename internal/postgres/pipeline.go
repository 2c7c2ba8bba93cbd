package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// CI pipelines (berth.PipelineStore), in the tables of migration 0006. The
// store keeps a pipeline as the domain validated it; matching a token against
// it is package berth's.

var _ berth.PipelineStore = (*DB)(nil)

const pipelineColumns = `id, name, issuer, subject, audience, claims, jwks, preset, created`

func scanPipeline(row pgx.Row) (berth.Pipeline, error) {
	var (
		p      berth.Pipeline
		claims *string
		jwks   []byte
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Issuer, &p.Subject, &p.Audience, &claims, &jwks, &p.Preset, &p.Created); err != nil {
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
	p.Created = utc(p.Created)
	return p, nil
}

// CreatePipeline stores p, or returns conflict, changing nothing, when a
// pipeline with its ID or Name exists.
func (db *DB) CreatePipeline(ctx context.Context, p berth.Pipeline) error {
	var claims *string
	if len(p.Claims) > 0 {
		b, err := json.Marshal(p.Claims)
		if err != nil {
			return fmt.Errorf("create pipeline %s: %w", p.Name, err)
		}
		s := string(b)
		claims = &s
	}
	var jwks []byte // NULL when the pipeline has no key set of its own
	if p.JWKS != nil {
		jwks = nonNil([]byte(p.JWKS))
	}
	_, err := db.pool.Exec(ctx,
		`INSERT INTO pipelines (`+pipelineColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.Name, p.Issuer, p.Subject, p.Audience, claims, jwks, p.Preset, p.Created)
	switch {
	case isUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "a pipeline named %s or with id %s exists", p.Name, p.ID).
			WithDetail("pipeline", p.Name)
	case err != nil:
		return fmt.Errorf("create pipeline %s: %w", p.Name, err)
	}
	return nil
}

// FindPipelineByID returns the pipeline with this ID, or not_found.
func (db *DB) FindPipelineByID(ctx context.Context, id string) (berth.Pipeline, error) {
	return db.findPipeline(ctx, "id", id)
}

// FindPipelineByName returns the pipeline with this name, or not_found.
func (db *DB) FindPipelineByName(ctx context.Context, name string) (berth.Pipeline, error) {
	return db.findPipeline(ctx, "name", name)
}

// findPipeline looks a pipeline up by one unique column; column is "id" or
// "name", never input.
func (db *DB) findPipeline(ctx context.Context, column, value string) (berth.Pipeline, error) {
	p, err := scanPipeline(db.pool.QueryRow(ctx,
		`SELECT `+pipelineColumns+` FROM pipelines WHERE `+column+` = $1`, value))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
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
func (db *DB) FindPipelines(ctx context.Context, f berth.PipelineFilter) ([]berth.Pipeline, error) {
	q, args := `SELECT `+pipelineColumns+` FROM pipelines`, []any{}
	if f.Issuer != "" {
		q, args = q+` WHERE issuer = $1`, append(args, f.Issuer)
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("find pipelines: %w", err)
	}
	defer rows.Close()
	out := []berth.Pipeline{}
	for rows.Next() {
		p, err := scanPipeline(rows)
		if err != nil {
			return nil, fmt.Errorf("find pipelines: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find pipelines: %w", err)
	}
	return out, nil
}

// DeletePipeline removes the pipeline, its permissions on every connection
// and its pending permission requests in one transaction, or returns
// not_found. It locks the pipeline's row first, so a concurrent permit or
// request either lands before and is deleted, or after and is refused.
func (db *DB) DeletePipeline(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete pipeline", func(tx pgx.Tx) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT true FROM pipelines WHERE id = $1 FOR UPDATE`, id).Scan(&ok)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
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
// its row locked FOR KEY SHARE until tx ends.
func lockPipeline(ctx context.Context, tx pgx.Tx, id string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM pipelines WHERE id = $1 FOR KEY SHARE`, id).Scan(&ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return pipelineNotFound("id", id)
	case err != nil:
		return fmt.Errorf("find pipeline %s: %w", id, err)
	}
	return nil
}
