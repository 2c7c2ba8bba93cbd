package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrations holds the schema, one step per file, named NNNN_what.sql: in
// migrations/ when one text (with the dialect's type names) serves every
// engine, in migrations/ENGINE/ when the DDL differs. A version is either
// shared or per engine, never both; a step that only one engine needs (0008,
// PostgreSQL's cluster tables) is recorded, without DDL, by the others, so
// that a version means the same on every engine.
//
//go:embed migrations
var migrations embed.FS

// Step is one schema step, as rendered for one engine.
type Step struct {
	Version int
	Name    string
	SQL     string // empty when the step has nothing for this engine
}

// Steps returns the ordered migration list as d renders it. It fails on a
// misnamed file, a version shared and per engine at once, or a version whose
// files are named differently, so a mistake shows at the first test run.
func Steps(d *Dialect) ([]Step, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	type file struct{ name, dir string }
	byVersion := map[int][]file{}
	err := fs.WalkDir(migrations, "migrations", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, aerr := strconv.Atoi(prefix)
		if !ok || aerr != nil || version <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return fmt.Errorf("migration %s: name must be NNNN_what.sql", p)
		}
		byVersion[version] = append(byVersion[version], file{name: e.Name(), dir: path.Dir(p)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	if len(byVersion) == 0 {
		return nil, fmt.Errorf("no migrations embedded")
	}
	var steps []Step
	for version, files := range byVersion {
		s := Step{Version: version, Name: files[0].name}
		for _, f := range files {
			if f.name != s.Name {
				return nil, fmt.Errorf("migrations %s/%s and %s/%s share version %d", files[0].dir, s.Name, f.dir, f.name, version)
			}
			if f.dir == "migrations" && len(files) > 1 {
				return nil, fmt.Errorf("migration %s is both shared and per engine", f.name)
			}
			if f.dir != "migrations" && f.dir != "migrations/"+d.Name {
				continue
			}
			b, err := migrations.ReadFile(path.Join(f.dir, f.name))
			if err != nil {
				return nil, fmt.Errorf("read migration %s: %w", f.name, err)
			}
			if s.SQL, err = d.render(f.name, string(b)); err != nil {
				return nil, err
			}
		}
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].Version < steps[j].Version })
	return steps, nil
}

// Migrate applies the steps the database has not recorded, with their
// schema_migrations rows, in one write transaction of c: a failed step
// leaves the schema as it was (DDL is transactional on both engines), and
// processes or replicas opening the database at once queue (SQLite's BEGIN
// IMMEDIATE, PostgreSQL's advisory lock), each after the first finding every
// step recorded. It refuses a database whose schema is newer than this build
// knows.
func Migrate(ctx context.Context, c Conn, d *Dialect) error {
	steps, err := Steps(d)
	if err != nil {
		return err
	}
	latest := steps[len(steps)-1].Version
	return InTx(ctx, c, "migrate", func(tx Querier) error {
		if d.LockMigrations != nil {
			if err := d.LockMigrations(ctx, tx); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, d.MigrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if d.FixHistory != nil {
			if err := d.FixHistory(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		newest := 0
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			applied[v] = true
			newest = max(newest, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if newest > latest {
			return fmt.Errorf("the database schema is at version %d, newer than the %d this berth knows: run a berth at least as new as the one that last opened it", newest, latest)
		}
		for _, s := range steps {
			if applied[s.Version] {
				continue
			}
			if s.SQL != "" {
				if _, err := tx.Exec(ctx, s.SQL); err != nil {
					return fmt.Errorf("migration %s: %w", s.Name, err)
				}
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, s.Version, s.Name); err != nil {
				return fmt.Errorf("migration %s: record: %w", s.Name, err)
			}
		}
		return nil
	})
}
