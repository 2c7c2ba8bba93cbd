package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// Service connections (berth.ConnectionStore), in the tables of migration
// 0006: the connection, the pipelines it permits in the order they were
// permitted, and the permission requests pending on it. Whether a pipeline
// may use a connection is decided in package berth (Connection.Usable).

var _ berth.ConnectionStore = (*DB)(nil)

// connectionQuery selects connections with their permitted pipelines, one
// row per permitted pipeline (or one with NULL when none), ordered by name
// then position, so one query answers with one snapshot; readConnections
// folds the rows. The placeholder %s is a WHERE clause or nothing.
const connectionQuery = `
	SELECT c.id, c.name, c.principal_id, c.auth, c.intents, c.all_pipelines, c.secret_id, c.disabled, c.created,
		cp.pipeline_id
	FROM connections c LEFT JOIN connection_pipelines cp ON cp.connection_id = c.id
	%s
	ORDER BY c.name, cp.position, cp.pipeline_id`

func readConnections(rows pgx.Rows) ([]berth.Connection, error) {
	defer rows.Close()
	out := []berth.Connection{}
	for rows.Next() {
		var (
			c        berth.Connection
			auth     string
			intents  *string
			pipeline *string
		)
		if err := rows.Scan(&c.ID, &c.Name, &c.PrincipalID, &auth, &intents, &c.AllPipelines, &c.SecretID,
			&c.Disabled, &c.Created, &pipeline); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == c.ID {
			if pipeline != nil {
				out[n-1].Pipelines = append(out[n-1].Pipelines, *pipeline)
			}
			continue
		}
		c.Auth = berth.ConnectionAuth(auth)
		if intents != nil {
			// Written by json.Marshal: unreadable only when edited by hand,
			// which is internal: hence %v.
			if err := json.Unmarshal([]byte(*intents), &c.Intents); err != nil {
				return nil, fmt.Errorf("stored intents of connection %s: %v", c.Name, err)
			}
		}
		c.Created = utc(c.Created)
		if pipeline != nil {
			c.Pipelines = []string{*pipeline}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// findConnections runs connectionQuery with the given condition on q.
func findConnections(ctx context.Context, q querier, where string, args ...any) ([]berth.Connection, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(connectionQuery, where), args...)
	if err != nil {
		return nil, err
	}
	return readConnections(rows)
}

// findConnection returns the one connection whose column equals value, or
// not_found; column is "id" or "name", never input.
func findConnection(ctx context.Context, q querier, column, value string) (berth.Connection, error) {
	cs, err := findConnections(ctx, q, `WHERE c.`+column+` = $1`, value)
	switch {
	case err != nil:
		return berth.Connection{}, fmt.Errorf("find connection by %s %s: %w", column, value, err)
	case len(cs) == 0:
		return berth.Connection{}, connectionNotFound(column, value)
	}
	return cs[0], nil
}

func connectionNotFound(column, value string) *berth.Error {
	if column == "name" {
		return berth.Errorf(berth.CodeNotFound, "no service connection is named %s", value).WithDetail("connection", value)
	}
	return berth.Errorf(berth.CodeNotFound, "no service connection has id %s", value)
}

// lockConnection returns not_found unless a connection has this id, and
// keeps its row locked in mode ("KEY SHARE" or "NO KEY UPDATE", never
// input) until tx ends; DeleteConnection locks it FOR UPDATE, so it waits.
func lockConnection(ctx context.Context, tx pgx.Tx, id, mode string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM connections WHERE id = $1 FOR `+mode, id).Scan(&ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return connectionNotFound("id", id)
	case err != nil:
		return fmt.Errorf("find connection %s: %w", id, err)
	}
	return nil
}

// CreateConnection stores c with its permitted pipelines, in their order (a
// repeated one counts once). It returns not_found when no principal has
// c.PrincipalID or no pipeline has one of c.Pipelines, and conflict when a
// connection with its ID or Name exists; either way nothing changes.
func (db *DB) CreateConnection(ctx context.Context, c berth.Connection) error {
	var intents *string
	if len(c.Intents) > 0 {
		b, err := json.Marshal(c.Intents)
		if err != nil {
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		s := string(b)
		intents = &s
	}
	return db.inTx(ctx, "create connection", func(tx pgx.Tx) error {
		if err := lockPrincipal(ctx, tx, c.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO connections (id, name, principal_id, auth, intents, all_pipelines, secret_id, disabled, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			c.ID, c.Name, c.PrincipalID, string(c.Auth), intents, c.AllPipelines, c.SecretID, c.Disabled, c.Created)
		switch {
		case isUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "a service connection named %s or with id %s exists", c.Name, c.ID).
				WithDetail("connection", c.Name)
		case isForeignKeyViolation(err):
			return principalNotFound("id", c.PrincipalID)
		case err != nil:
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		for _, pid := range c.Pipelines {
			if err := permit(ctx, tx, c.ID, pid); err != nil {
				return err
			}
		}
		return nil
	})
}

// permit adds pipelineID at the end of the connection's permitted list
// unless it is there, and removes its pending request. It returns not_found
// when no pipeline has this id; the caller has locked the connection.
func permit(ctx context.Context, tx pgx.Tx, connectionID, pipelineID string) error {
	if err := lockPipeline(ctx, tx, pipelineID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO connection_pipelines (connection_id, pipeline_id, position)
		SELECT $1, $2, coalesce(max(position), 0) + 1 FROM connection_pipelines WHERE connection_id = $1
		ON CONFLICT (connection_id, pipeline_id) DO NOTHING`,
		connectionID, pipelineID); err != nil {
		return fmt.Errorf("permit pipeline %s on connection %s: %w", pipelineID, connectionID, err)
	}
	if _, err := tx.Exec(ctx,
		`DELETE FROM permission_requests WHERE connection_id = $1 AND pipeline_id = $2`, connectionID, pipelineID); err != nil {
		return fmt.Errorf("permit pipeline %s on connection %s: remove its request: %w", pipelineID, connectionID, err)
	}
	return nil
}

// FindConnectionByID returns the connection with this ID, or not_found.
func (db *DB) FindConnectionByID(ctx context.Context, id string) (berth.Connection, error) {
	return findConnection(ctx, db.pool, "id", id)
}

// FindConnectionByName returns the connection with this name, or not_found.
func (db *DB) FindConnectionByName(ctx context.Context, name string) (berth.Connection, error) {
	return findConnection(ctx, db.pool, "name", name)
}

// FindConnections returns the connections f selects, ordered by name; an
// empty slice when none is.
func (db *DB) FindConnections(ctx context.Context, f berth.ConnectionFilter) ([]berth.Connection, error) {
	cond, args := "", []any{}
	if f.PrincipalID != "" {
		cond, args = "WHERE c.principal_id = $1", append(args, f.PrincipalID)
	}
	cs, err := findConnections(ctx, db.pool, cond, args...)
	if err != nil {
		return nil, fmt.Errorf("find connections: %w", err)
	}
	return cs, nil
}

// UpdateConnection applies the set fields of u and returns the connection as
// it now is, or not_found.
func (db *DB) UpdateConnection(ctx context.Context, id string, u berth.ConnectionUpdate) (berth.Connection, error) {
	sets, args := []string{}, []any{id}
	set := func(column string, v any) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", column, len(args)))
	}
	if u.Auth != nil {
		set("auth", string(*u.Auth))
	}
	if u.SecretID != nil {
		set("secret_id", *u.SecretID)
	}
	if u.AllPipelines != nil {
		set("all_pipelines", *u.AllPipelines)
	}
	if u.Disabled != nil {
		set("disabled", *u.Disabled)
	}
	var c berth.Connection
	err := db.inTx(ctx, "update connection", func(tx pgx.Tx) error {
		if len(sets) > 0 {
			if _, err := tx.Exec(ctx,
				`UPDATE connections SET `+strings.Join(sets, ", ")+` WHERE id = $1`, args...); err != nil {
				return fmt.Errorf("update connection %s: %w", id, err)
			}
		}
		var err error
		c, err = findConnection(ctx, tx, "id", id)
		return err
	})
	if err != nil {
		return berth.Connection{}, err
	}
	return c, nil
}

// DeleteConnection removes the connection, its permissions and its pending
// requests in one transaction, or returns not_found.
func (db *DB) DeleteConnection(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete connection", func(tx pgx.Tx) error {
		n, err := deleteConnections(ctx, tx, `id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete connection %s: %w", id, err)
		}
		if n == 0 {
			return connectionNotFound("id", id)
		}
		return nil
	})
}

// deleteConnections locks the connections whose row matches cond (over the
// connections table, with arg as $1) FOR UPDATE, removes them with their
// permissions and requests, and returns how many it removed.
func deleteConnections(ctx context.Context, tx pgx.Tx, cond string, arg any) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM connections WHERE `+cond+` FOR UPDATE`, arg)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	for _, q := range []string{
		`DELETE FROM connection_pipelines WHERE connection_id = ANY($1)`,
		`DELETE FROM permission_requests WHERE connection_id = ANY($1)`,
		`DELETE FROM connections WHERE id = ANY($1)`,
	} {
		if _, err := tx.Exec(ctx, q, ids); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// PermitPipeline adds the pipeline to the end of the connection's permitted
// list (a no-op when it is there) and removes its pending request, in one
// transaction. It returns not_found when the connection or the pipeline does
// not exist. Permits of one connection run one after another, so each takes
// its own position.
func (db *DB) PermitPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return db.inTx(ctx, "permit pipeline", func(tx pgx.Tx) error {
		if err := lockConnection(ctx, tx, connectionID, "NO KEY UPDATE"); err != nil {
			return err
		}
		return permit(ctx, tx, connectionID, pipelineID)
	})
}

// ForbidPipeline removes the pipeline from the permitted list, a no-op when
// it is not there; not_found when the connection does not exist.
func (db *DB) ForbidPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return db.inTx(ctx, "forbid pipeline", func(tx pgx.Tx) error {
		if err := lockConnection(ctx, tx, connectionID, "KEY SHARE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`DELETE FROM connection_pipelines WHERE connection_id = $1 AND pipeline_id = $2`, connectionID, pipelineID); err != nil {
			return fmt.Errorf("forbid pipeline %s on connection %s: %w", pipelineID, connectionID, err)
		}
		return nil
	})
}

// RecordPermissionRequest records an attempt: a new request with Count 1 and
// First and Last set to r.Last, or, when one is pending for the same
// connection and pipeline, Count incremented and Last and Run set from r.
// not_found when the connection or pipeline does not exist.
func (db *DB) RecordPermissionRequest(ctx context.Context, r berth.PermissionRequest) error {
	return db.inTx(ctx, "record permission request", func(tx pgx.Tx) error {
		if err := lockConnection(ctx, tx, r.ConnectionID, "KEY SHARE"); err != nil {
			return err
		}
		if err := lockPipeline(ctx, tx, r.PipelineID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO permission_requests (connection_id, pipeline_id, first, last, count, run)
			VALUES ($1, $2, $3, $3, 1, $4)
			ON CONFLICT (connection_id, pipeline_id)
			DO UPDATE SET count = permission_requests.count + 1, last = excluded.last, run = excluded.run`,
			r.ConnectionID, r.PipelineID, r.Last, r.Run); err != nil {
			return fmt.Errorf("record permission request of pipeline %s on connection %s: %w", r.PipelineID, r.ConnectionID, err)
		}
		return nil
	})
}

// FindPermissionRequests returns the requests pending on the connection,
// ordered by First then pipeline id; an empty slice when there are none or
// the connection does not exist.
func (db *DB) FindPermissionRequests(ctx context.Context, connectionID string) ([]berth.PermissionRequest, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT pipeline_id, first, last, count, run FROM permission_requests
		WHERE connection_id = $1 ORDER BY first, pipeline_id`, connectionID)
	if err != nil {
		return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
	}
	defer rows.Close()
	out := []berth.PermissionRequest{}
	for rows.Next() {
		r := berth.PermissionRequest{ConnectionID: connectionID}
		var (
			first, last time.Time
			count       int64
		)
		if err := rows.Scan(&r.PipelineID, &first, &last, &count, &r.Run); err != nil {
			return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
		}
		r.First, r.Last, r.Count = utc(first), utc(last), int(count)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
	}
	return out, nil
}
