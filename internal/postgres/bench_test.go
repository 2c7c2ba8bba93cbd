package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/storetest"
)

// The benchmarks are storetest's, as the SQLite store runs them, so the two
// compare in one run: go test -run '^$' -bench . ./internal/sqlite ./internal/postgres

// BenchmarkFindManifest and BenchmarkFindBlobLink run on a DB that does not
// listen (every read a round trip) and on one that does (served by the
// read cache, as berth serve's are).
func BenchmarkFindManifest(b *testing.B) {
	for _, listening := range []bool{false, true} {
		b.Run(map[bool]string{false: "uncached", true: "cached"}[listening], func(b *testing.B) {
			storetest.BenchFindManifest(b, openBench(b, listening))
		})
	}
}

func BenchmarkFindBlobLink(b *testing.B) {
	for _, listening := range []bool{false, true} {
		b.Run(map[bool]string{false: "uncached", true: "cached"}[listening], func(b *testing.B) {
			storetest.BenchFindBlobLink(b, openBench(b, listening))
		})
	}
}

// openBench opens a DB on a new schema, listening for the other replicas'
// changes when listening, closed when b ends.
func openBench(b *testing.B, listening bool) *postgres.DB {
	db := open(b, newSchema(b))
	b.Cleanup(func() { db.Close() })
	if listening {
		withListener(b, db)
	}
	return db
}

func BenchmarkTinyPush(b *testing.B) {
	db := open(b, newSchema(b))
	defer db.Close()
	storetest.BenchTinyPush(b, db)
}

// BenchmarkColdDecision is storetest.BenchColdDecision on a schema
// bulk-loaded with COPY.
func BenchmarkColdDecision(b *testing.B) {
	ctx := context.Background()
	dsn := newSchema(b)
	db := open(b, dsn)
	defer db.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var prows, arows [][]any
	for i := range storetest.ColdDecisionPrincipals {
		id := storetest.ColdDecisionID(i)
		prows = append(prows, []any{id, fmt.Sprintf("p%d", i), storetest.ColdDecisionClientID(i), "service", false, time.Unix(0, 0)})
		for j := range storetest.ColdDecisionRoles {
			arows = append(arows, []any{id, fmt.Sprintf("team%d/app%d", i%100, j), "push", time.Unix(0, 0), ""})
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"principals"},
		[]string{"id", "name", "client_id", "kind", "disabled", "created"}, pgx.CopyFromRows(prows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"role_assignments"},
		[]string{"principal_id", "scope", "role", "created", "created_by"}, pgx.CopyFromRows(arows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE principals; ANALYZE role_assignments`); err != nil {
		b.Fatal(err)
	}
	storetest.BenchColdDecision(b, db)
}

// BenchmarkAppendAuditEvents appends batches of 16 events, as the audit
// writer flushes them, from several goroutines at once: they queue on the
// head row's lock.
func BenchmarkAppendAuditEvents(b *testing.B) {
	db := open(b, newSchema(b))
	defer db.Close()
	storetest.BenchAppendAuditEvents(b, db, 16, true)
}
