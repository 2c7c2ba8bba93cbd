package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

// Service connections (berth.ConnectionStore), in the tables of migration
// 0006: the connection, the pipelines it permits in the order they were
// permitted, and the permission requests pending on it. Whether a pipeline may
// use a connection is decided in package berth (Connection.Usable).

var _ berth.ConnectionStore = (*DB)(nil)

// connectionQuery selects connections with their permitted pipelines, one row
// per permitted pipeline (or one with NULL when none), ordered by name then
// position, so one query answers with one snapshot; readConnections folds the
// rows. The placeholder %s is a WHERE clause or nothing.
const connectionQuery = `
	SELECT c.id, c.name, c.principal_id, c.auth, c.intents, c.all_pipelines, c.secret_id, c.disabled, c.created,
		cp.pipeline_id
	FROM connections c LEFT JOIN connection_pipelines cp ON cp.connection_id = c.id
	%s
	ORDER BY c.name, cp.position`

func readConnections(rows *sql.Rows) ([]berth.Connection, error) {
	out := []berth.Connection{}
	for rows.Next() {
		var (
			c        berth.Connection
			auth     string
			intents  sql.NullString
			created  int64
			pipeline sql.NullString
		)
		if err := rows.Scan(&c.ID, &c.Name, &c.PrincipalID, &auth, &intents, &c.AllPipelines, &c.SecretID,
			&c.Disabled, &created, &pipeline); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == c.ID {
			out[n-1].Pipelines = append(out[n-1].Pipelines, pipeline.String)
			continue
		}
		c.Auth = berth.ConnectionAuth(auth)
		if intents.Valid {
			// Written by json.Marshal: unreadable only when edited by hand,
			// which is internal, not the caller's fault: hence %v.
			if err := json.Unmarshal([]byte(intents.String), &c.Intents); err != nil {
				return nil, fmt.Errorf("stored intents of connection %s: %v", c.Name, err)
			}
		}
		c.Created = fromDB(created)
		if pipeline.Valid {
			c.Pipelines = []string{pipeline.String}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// findConnections runs connectionQuery with the given condition on q.
func findConnections(ctx context.Context, q queryer, where string, args ...any) ([]berth.Connection, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(connectionQuery, where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return readConnections(rows)
}

// findConnection returns the one connection whose column equals value, or
// not_found; column is "id" or "name", never input.
func findConnection(ctx context.Context, q queryer, column, value string) (berth.Connection, error) {
	cs, err := findConnections(ctx, q, `WHERE c.`+column+` = ?`, value)
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

// connectionExists returns not_found unless a connection has this id.
func connectionExists(ctx context.Context, q queryer, id string) error {
	var ok bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM connections WHERE id = ?)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("find connection %s: %w", id, err)
	}
	if !ok {
		return connectionNotFound("id", id)
	}
	return nil
}

// CreateConnection stores c with its permitted pipelines, in their order
// (a repeated one counts once). It returns not_found when no principal has
// c.PrincipalID or no pipeline has one of c.Pipelines, and conflict when a
// connection with its ID or Name exists; either way nothing changes.
func (db *DB) CreateConnection(ctx context.Context, c berth.Connection) error {
	var intents sql.NullString
	if len(c.Intents) > 0 {
		b, err := json.Marshal(c.Intents)
		if err != nil {
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		intents = sql.NullString{String: string(b), Valid: true}
	}
	return db.inTx(ctx, "create connection", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM principals WHERE id = ?)`, c.PrincipalID).Scan(&exists); err != nil {
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		if !exists {
			return principalNotFound("id", c.PrincipalID)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO connections (id, name, principal_id, auth, intents, all_pipelines, secret_id, disabled, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.PrincipalID, string(c.Auth), intents, c.AllPipelines, c.SecretID, c.Disabled, toDB(c.Created))
		switch {
		case isUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "a service connection named %s or with id %s exists", c.Name, c.ID).
				WithDetail("connection", c.Name)
		case err != nil:
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		for _, pid := range c.Pipelines {
			if err := permit(ctx, tx, c.ID, pid); err != nil {
				return fmt.Errorf("create connection %s: %w", c.Name, err)
			}
		}
		return nil
	})
}

// permit adds pipelineID at the end of the connection's permitted list unless
// it is there, and removes its pending request. It returns not_found when no
// pipeline has this id; the caller has checked the connection.
func permit(ctx context.Context, tx *sql.Tx, connectionID, pipelineID string) error {
	if err := pipelineExists(ctx, tx, pipelineID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO connection_pipelines (connection_id, pipeline_id, position)
		SELECT ?, ?, coalesce(max(position), 0) + 1 FROM connection_pipelines WHERE connection_id = ?
		ON CONFLICT (connection_id, pipeline_id) DO NOTHING`,
		connectionID, pipelineID, connectionID); err != nil {
		return fmt.Errorf("permit pipeline %s: %w", pipelineID, err)
	}
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM permission_requests WHERE connection_id = ? AND pipeline_id = ?`, connectionID, pipelineID); err != nil {
		return fmt.Errorf("permit pipeline %s: remove its request: %w", pipelineID, err)
	}
	return nil
}

// FindConnectionByID returns the connection with this ID, or not_found.
func (db *DB) FindConnectionByID(ctx context.Context, id string) (berth.Connection, error) {
	return findConnection(ctx, db.read, "id", id)
}

// FindConnectionByName returns the connection with this name, or not_found.
func (db *DB) FindConnectionByName(ctx context.Context, name string) (berth.Connection, error) {
	return findConnection(ctx, db.read, "name", name)
}

// FindConnections returns the connections f selects, ordered by name; an
// empty slice when none is.
func (db *DB) FindConnections(ctx context.Context, f berth.ConnectionFilter) ([]berth.Connection, error) {
	var (
		where []string
		args  []any
	)
	if f.PrincipalID != "" {
		where, args = append(where, "c.principal_id = ?"), append(args, f.PrincipalID)
	}
	cond := ""
	if len(where) > 0 {
		cond = "WHERE " + strings.Join(where, " AND ")
	}
	cs, err := findConnections(ctx, db.read, cond, args...)
	if err != nil {
		return nil, fmt.Errorf("find connections: %w", err)
	}
	return cs, nil
}

// UpdateConnection applies the set fields of u and returns the connection as
// it now is, or not_found.
func (db *DB) UpdateConnection(ctx context.Context, id string, u berth.ConnectionUpdate) (berth.Connection, error) {
	var sets []string
	var args []any
	if u.Auth != nil {
		sets, args = append(sets, "auth = ?"), append(args, string(*u.Auth))
	}
	if u.SecretID != nil {
		sets, args = append(sets, "secret_id = ?"), append(args, *u.SecretID)
	}
	if u.AllPipelines != nil {
		sets, args = append(sets, "all_pipelines = ?"), append(args, *u.AllPipelines)
	}
	if u.Disabled != nil {
		sets, args = append(sets, "disabled = ?"), append(args, *u.Disabled)
	}
	var c berth.Connection
	err := db.inTx(ctx, "update connection", func(tx *sql.Tx) error {
		if len(sets) > 0 {
			if _, err := tx.ExecContext(ctx,
				`UPDATE connections SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...); err != nil {
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
	return db.inTx(ctx, "delete connection", func(tx *sql.Tx) error {
		n, err := deleteConnections(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete connection %s: %w", id, err)
		}
		if n == 0 {
			return connectionNotFound("id", id)
		}
		return nil
	})
}

// deleteConnections removes the connections whose row matches cond (over the
// connections table) with their permissions and requests, and returns how
// many connections it removed.
func deleteConnections(ctx context.Context, tx *sql.Tx, cond string, args ...any) (int64, error) {
	sub := `SELECT id FROM connections WHERE ` + cond
	for _, q := range []string{
		`DELETE FROM connection_pipelines WHERE connection_id IN (` + sub + `)`,
		`DELETE FROM permission_requests WHERE connection_id IN (` + sub + `)`,
	} {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return 0, err
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM connections WHERE `+cond, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PermitPipeline adds the pipeline to the end of the connection's permitted
// list (a no-op when it is there) and removes its pending request, in one
// transaction. It returns not_found when the connection or the pipeline does
// not exist.
func (db *DB) PermitPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return db.inTx(ctx, "permit pipeline", func(tx *sql.Tx) error {
		if err := connectionExists(ctx, tx, connectionID); err != nil {
			return err
		}
		return permit(ctx, tx, connectionID, pipelineID)
	})
}

// ForbidPipeline removes the pipeline from the permitted list, a no-op when
// it is not there; not_found when the connection does not exist.
func (db *DB) ForbidPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return db.inTx(ctx, "forbid pipeline", func(tx *sql.Tx) error {
		if err := connectionExists(ctx, tx, connectionID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM connection_pipelines WHERE connection_id = ? AND pipeline_id = ?`, connectionID, pipelineID); err != nil {
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
	return db.inTx(ctx, "record permission request", func(tx *sql.Tx) error {
		if err := connectionExists(ctx, tx, r.ConnectionID); err != nil {
			return err
		}
		if err := pipelineExists(ctx, tx, r.PipelineID); err != nil {
			return err
		}
		last := toDB(r.Last)
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO permission_requests (connection_id, pipeline_id, first, last, count, run)
			VALUES (?, ?, ?, ?, 1, ?)
			ON CONFLICT (connection_id, pipeline_id)
			DO UPDATE SET count = count + 1, last = excluded.last, run = excluded.run`,
			r.ConnectionID, r.PipelineID, last, last, r.Run); err != nil {
			return fmt.Errorf("record permission request of pipeline %s on connection %s: %w", r.PipelineID, r.ConnectionID, err)
		}
		return nil
	})
}

// FindPermissionRequests returns the requests pending on the connection,
// ordered by First then pipeline id; an empty slice when there are none or
// the connection does not exist.
func (db *DB) FindPermissionRequests(ctx context.Context, connectionID string) ([]berth.PermissionRequest, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT pipeline_id, first, last, count, run FROM permission_requests
		WHERE connection_id = ? ORDER BY first, pipeline_id`, connectionID)
	if err != nil {
		return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
	}
	defer rows.Close()
	out := []berth.PermissionRequest{}
	for rows.Next() {
		r := berth.PermissionRequest{ConnectionID: connectionID}
		var first, last int64
		if err := rows.Scan(&r.PipelineID, &first, &last, &r.Count, &r.Run); err != nil {
			return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
		}
		r.First, r.Last = fromDB(first), fromDB(last)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
	}
	return out, nil
}
