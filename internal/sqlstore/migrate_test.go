package sqlstore_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/sqlstore"
)

// TestStepsAgreeAcrossEngines checks the one migration list: every engine
// has the same versions under the same names (a version means the same on
// every engine), every step renders with no type name left, and only the
// steps whose DDL differs are per engine.
func TestStepsAgreeAcrossEngines(t *testing.T) {
	lite, err := sqlstore.Steps(sqlite.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sqlstore.Steps(postgres.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("SQLite has %d steps, PostgreSQL %d", len(lite), len(pg))
	}
	for i := range lite {
		l, p := lite[i], pg[i]
		if l.Version != i+1 || l.Version != p.Version || l.Name != p.Name {
			t.Errorf("step %d: SQLite's is %d %s, PostgreSQL's %d %s", i+1, l.Version, l.Name, p.Version, p.Name)
		}
		for _, s := range []sqlstore.Step{l, p} {
			if strings.Contains(s.SQL, "{{") || strings.Contains(s.SQL, "}}") {
				t.Errorf("step %s keeps a type name unrendered", s.Name)
			}
		}
	}
	// PostgreSQL's cluster tables are nothing on SQLite; every other step
	// creates something on both.
	for i := range lite {
		if want := lite[i].Name != "0008_cluster.sql"; (lite[i].SQL != "") != want {
			t.Errorf("SQLite's step %s has DDL: %v, want %v", lite[i].Name, lite[i].SQL != "", want)
		}
		if pg[i].SQL == "" {
			t.Errorf("PostgreSQL's step %s has no DDL", pg[i].Name)
		}
	}
}

// TestStepsRefuseAnIncompleteDialect checks that a dialect missing a type
// name fails at once rather than producing DDL with a hole in it.
func TestStepsRefuseAnIncompleteDialect(t *testing.T) {
	d := *sqlite.Dialect
	d.Types = map[string]string{}
	for k, v := range sqlite.Dialect.Types {
		if k != "time" {
			d.Types[k] = v
		}
	}
	if _, err := sqlstore.Steps(&d); err == nil || !strings.Contains(err.Error(), "{{time}}") {
		t.Fatalf("Steps with no {{time}} = %v, want an error naming it", err)
	}
}
