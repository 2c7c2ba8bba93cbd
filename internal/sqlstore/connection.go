package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

// Service connections (berth.ConnectionStore), in the tables of migration
// 0006: the connection, the pipelines it permits in the order they were
// permitted, and the permission requests pending on it. Whether a pipeline
// may use a connection is decided in package berth (Connection.Usable).

var _ berth.ConnectionStore = (*Store)(nil)

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

func readConnections(rows Rows) ([]berth.Connection, error) {
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
			&c.Disabled, Time(&c.Created), &pipeline); err != nil {
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
		if pipeline != nil {
			c.Pipelines = []string{*pipeline}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// findConnections runs connectionQuery with the given condition on q.
func findConnections(ctx context.Context, q Querier, where string, args ...any) ([]berth.Connection, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(connectionQuery, where), args...)
	if err != nil {
		return nil, err
	}
	return readConnections(rows)
}

// findConnection returns the one connection whose column equals value, or
// not_found; column is "id" or "name", never input.
func findConnection(ctx context.Context, q Querier, column, value string) (berth.Connection, error) {
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
// (on PostgreSQL) keeps its row locked with lock (s.d.ForKeyShare or
// s.d.ForNoKeyUpdate) until tx ends; DeleteConnection locks it FOR UPDATE,
// so it waits.
func lockConnection(ctx context.Context, tx Querier, id, lock string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM connections WHERE id = $1`+lock, id).Scan(&ok)
	switch {
	case IsNoRows(err):
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
func (s *Store) CreateConnection(ctx context.Context, c berth.Connection) error {
	var intents *string
	if len(c.Intents) > 0 {
		b, err := json.Marshal(c.Intents)
		if err != nil {
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		str := string(b)
		intents = &str
	}
	return s.inTx(ctx, "create connection", func(tx Querier) error {
		if err := s.lockPrincipal(ctx, tx, c.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO connections (id, name, principal_id, auth, intents, all_pipelines, secret_id, disabled, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			c.ID, c.Name, c.PrincipalID, string(c.Auth), intents, c.AllPipelines, c.SecretID, c.Disabled, c.Created)
		switch {
		case s.d.IsUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "a service connection named %s or with id %s exists", c.Name, c.ID).
				WithDetail("connection", c.Name)
		case s.d.IsForeignKeyViolation(err):
			return principalNotFound("id", c.PrincipalID)
		case err != nil:
			return fmt.Errorf("create connection %s: %w", c.Name, err)
		}
		for _, pid := range c.Pipelines {
			if err := s.permit(ctx, tx, c.ID, pid); err != nil {
				return err
			}
		}
		return nil
	})
}

// permit adds pipelineID at the end of the connection's permitted list
// unless it is there, and removes its pending request. It returns not_found
// when no pipeline has this id; the caller has locked the connection.
func (s *Store) permit(ctx context.Context, tx Querier, connectionID, pipelineID string) error {
	if err := s.lockPipeline(ctx, tx, pipelineID); err != nil {
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
func (s *Store) FindConnectionByID(ctx context.Context, id string) (berth.Connection, error) {
	return findConnection(ctx, s.c.Read(), "id", id)
}

// FindConnectionByName returns the connection with this name, or not_found.
func (s *Store) FindConnectionByName(ctx context.Context, name string) (berth.Connection, error) {
	return findConnection(ctx, s.c.Read(), "name", name)
}

// FindConnections returns the connections f selects, ordered by name; an
// empty slice when none is.
func (s *Store) FindConnections(ctx context.Context, f berth.ConnectionFilter) ([]berth.Connection, error) {
	cond, args := "", []any{}
	if f.PrincipalID != "" {
		cond, args = "WHERE c.principal_id = $1", append(args, f.PrincipalID)
	}
	cs, err := findConnections(ctx, s.c.Read(), cond, args...)
	if err != nil {
		return nil, fmt.Errorf("find connections: %w", err)
	}
	return cs, nil
}

// UpdateConnection applies the set fields of u and returns the connection as
// it now is, or not_found.
func (s *Store) UpdateConnection(ctx context.Context, id string, u berth.ConnectionUpdate) (berth.Connection, error) {
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
	err := s.inTx(ctx, "update connection", func(tx Querier) error {
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
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete connection", func(tx Querier) error {
		n, err := s.deleteConnections(ctx, tx, `id = $1`, id)
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
// connections table, with arg as $1) FOR UPDATE (on PostgreSQL), removes
// them with their permissions and requests, and returns how many it removed.
func (s *Store) deleteConnections(ctx context.Context, tx Querier, cond string, arg any) (int, error) {
	ids, err := collectStrings(tx.Query(ctx, `SELECT id FROM connections WHERE `+cond+s.d.ForUpdate, arg))
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		for _, q := range []string{
			`DELETE FROM connection_pipelines WHERE connection_id = $1`,
			`DELETE FROM permission_requests WHERE connection_id = $1`,
			`DELETE FROM connections WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return 0, err
			}
		}
	}
	return len(ids), nil
}

// PermitPipeline adds the pipeline to the end of the connection's permitted
// list (a no-op when it is there) and removes its pending request, in one
// transaction. It returns not_found when the connection or the pipeline does
// not exist. Permits of one connection run one after another, so each takes
// its own position.
func (s *Store) PermitPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return s.inTx(ctx, "permit pipeline", func(tx Querier) error {
		if err := lockConnection(ctx, tx, connectionID, s.d.ForNoKeyUpdate); err != nil {
			return err
		}
		return s.permit(ctx, tx, connectionID, pipelineID)
	})
}

// ForbidPipeline removes the pipeline from the permitted list, a no-op when
// it is not there; not_found when the connection does not exist.
func (s *Store) ForbidPipeline(ctx context.Context, connectionID, pipelineID string) error {
	return s.inTx(ctx, "forbid pipeline", func(tx Querier) error {
		if err := lockConnection(ctx, tx, connectionID, s.d.ForKeyShare); err != nil {
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
func (s *Store) RecordPermissionRequest(ctx context.Context, r berth.PermissionRequest) error {
	return s.inTx(ctx, "record permission request", func(tx Querier) error {
		if err := lockConnection(ctx, tx, r.ConnectionID, s.d.ForKeyShare); err != nil {
			return err
		}
		if err := s.lockPipeline(ctx, tx, r.PipelineID); err != nil {
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

// DismissPermissionRequest removes the pipeline's pending request on the
// connection without permitting it; not_found when none is pending.
func (s *Store) DismissPermissionRequest(ctx context.Context, connectionID, pipelineID string) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM permission_requests WHERE connection_id = $1 AND pipeline_id = $2`, connectionID, pipelineID)
	if err != nil {
		return fmt.Errorf("dismiss the request of pipeline %s on connection %s: %w", pipelineID, connectionID, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "pipeline %s has no pending request on connection %s", pipelineID, connectionID)
	}
	return nil
}

// FindPermissionRequests returns the requests pending on the connection,
// ordered by First then pipeline id; an empty slice when there are none or
// the connection does not exist.
func (s *Store) FindPermissionRequests(ctx context.Context, connectionID string) ([]berth.PermissionRequest, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT pipeline_id, first, last, count, run FROM permission_requests
		WHERE connection_id = $1 ORDER BY first, pipeline_id`, connectionID)
	out, err := collect(rows, err, func(row Rows) (berth.PermissionRequest, error) {
		r := berth.PermissionRequest{ConnectionID: connectionID}
		var count int64
		err := row.Scan(&r.PipelineID, Time(&r.First), Time(&r.Last), &count, &r.Run)
		r.Count = int(count)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("find permission requests of connection %s: %w", connectionID, err)
	}
	return out, nil
}
