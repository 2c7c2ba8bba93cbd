package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth"
)

// CI pipelines (berth.PipelineStore), in the tables of migration 0006. The
// store keeps a pipeline as the domain validated it; matching a token against
// it is package berth's.

var _ berth.PipelineStore = (*DB)(nil)

const pipelineColumns = `id, name, issuer, subject, audience, claims, jwks, preset, created`

func scanPipeline(row interface{ Scan(...any) error }) (berth.Pipeline, error) {
	var (
		p       berth.Pipeline
		claims  sql.NullString
		jwks    []byte
		created int64
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Issuer, &p.Subject, &p.Audience, &claims, &jwks, &p.Preset, &created); err != nil {
		return berth.Pipeline{}, err
	}
	if claims.Valid {
		// Written by json.Marshal of a map[string]string: unreadable only when
		// edited by hand, which is internal, not the caller's fault: hence %v.
		if err := json.Unmarshal([]byte(claims.String), &p.Claims); err != nil {
			return berth.Pipeline{}, fmt.Errorf("stored claims of pipeline %s: %v", p.Name, err)
		}
	}
	if jwks != nil {
		p.JWKS = json.RawMessage(jwks)
	}
	p.Created = fromDB(created)
	return p, nil
}

// CreatePipeline stores p, or returns conflict, changing nothing, when a
// pipeline with its ID or Name exists.
func (db *DB) CreatePipeline(ctx context.Context, p berth.Pipeline) error {
	var claims sql.NullString
	if len(p.Claims) > 0 {
		b, err := json.Marshal(p.Claims)
		if err != nil {
			return fmt.Errorf("create pipeline %s: %w", p.Name, err)
		}
		claims = sql.NullString{String: string(b), Valid: true}
	}
	var jwks []byte // NULL when the pipeline has no key set of its own
	if p.JWKS != nil {
		jwks = nonNil([]byte(p.JWKS))
	}
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO pipelines (`+pipelineColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.Issuer, p.Subject, p.Audience, claims, jwks, p.Preset, toDB(p.Created))
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
	p, err := scanPipeline(db.read.QueryRowContext(ctx,
		`SELECT `+pipelineColumns+` FROM pipelines WHERE `+column+` = ?`, value))
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
		q, args = q+` WHERE issuer = ?`, append(args, f.Issuer)
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY name`, args...)
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

// DeletePipeline removes the pipeline, its permissions on every connection and
// its pending permission requests in one transaction, or returns not_found.
func (db *DB) DeletePipeline(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete pipeline", func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM connection_pipelines WHERE pipeline_id = ?`,
			`DELETE FROM permission_requests WHERE pipeline_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delete pipeline %s: %w", id, err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM pipelines WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete pipeline %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete pipeline %s: %w", id, err)
		} else if n == 0 {
			return pipelineNotFound("id", id)
		}
		return nil
	})
}

// pipelineExists returns not_found unless a pipeline has this id.
func pipelineExists(ctx context.Context, q queryer, id string) error {
	var ok bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pipelines WHERE id = ?)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("find pipeline %s: %w", id, err)
	}
	if !ok {
		return pipelineNotFound("id", id)
	}
	return nil
}
