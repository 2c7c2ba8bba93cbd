package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

// The benchmarks mirror the SQLite store's, so the two can be compared in
// one run: go test -run '^$' -bench . ./internal/sqlite ./internal/postgres

func BenchmarkFindManifest(b *testing.B) {
	ctx := context.Background()
	db := open(b, newSchema(b))
	defer db.Close()
	const images = 1000
	for i := range images {
		repo := fmt.Sprintf("team/app%d", i%10)
		config := berth.DigestOf("", fmt.Appendf(nil, "config %d", i))
		layer := berth.DigestOf("", fmt.Appendf(nil, "layer %d", i))
		for _, d := range []berth.Digest{config, layer} {
			if err := db.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: 1000, Created: time.Unix(0, 0)}); err != nil {
				b.Fatal(err)
			}
		}
		content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":%q},"layers":[{"digest":%q}],"pad":%q}`,
			config, layer, make([]byte, 600))
		m := &berth.Manifest{
			Repository:   repo,
			Digest:       berth.DigestOf("", content),
			MediaType:    "application/vnd.oci.image.manifest.v1+json",
			Content:      content,
			ArtifactType: "application/vnd.oci.image.config.v1+json",
			Annotations:  map[string]string{"org.opencontainers.image.created": "2026-03-14T15:09:26Z"},
			References:   []berth.Reference{{Digest: config, Kind: berth.ReferenceBlob}, {Digest: layer, Kind: berth.ReferenceBlob}},
			Created:      time.Unix(0, 0),
		}
		if err := db.PutManifest(ctx, m, fmt.Sprintf("v%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.FindManifest(ctx, fmt.Sprintf("team/app%d", i%10), fmt.Sprintf("v%d", i%images)); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "finds/s")
}

// BenchmarkColdDecision measures an authorization decision that finds
// nothing cached: read the principal, its secrets and its role assignments
// from a store holding 10,000 principals and 100,000 assignments, build its
// access index and decide, as the SQLite store's benchmark of that name does.
func BenchmarkColdDecision(b *testing.B) {
	const principals, perPrincipal = 10_000, 10
	ctx := context.Background()
	dsn := newSchema(b)
	db := open(b, dsn)
	defer db.Close()
	// Bulk load with COPY: the store's one-row API would take minutes.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	ids := make([]string, principals)
	var prows, arows [][]any
	for i := range principals {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		prows = append(prows, []any{ids[i], fmt.Sprintf("p%d", i), fmt.Sprintf("10000000-0000-4000-8000-%012d", i), "service", false, time.Unix(0, 0)})
		for j := range perPrincipal {
			arows = append(arows, []any{ids[i], fmt.Sprintf("team%d/app%d", i%100, j), "push", time.Unix(0, 0), ""})
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
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := ids[i%principals]
		p, err := db.FindPrincipalByID(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.FindSecrets(ctx, id); err != nil {
			b.Fatal(err)
		}
		as, err := db.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: id})
		if err != nil || len(as) != perPrincipal {
			b.Fatalf("%d assignments, %v", len(as), err)
		}
		idx := berth.NewAccessIndex(berth.Actor{ID: p.ID, Name: p.Name}, as)
		if !idx.Allows(berth.ActionContentWrite, fmt.Sprintf("team%d/app3", (i%principals)%100)) {
			b.Fatal("denied")
		}
	}
}

// BenchmarkAppendAuditEvents appends batches of 16 events, as the audit
// writer flushes them, from several goroutines at once: they queue on the
// head row's lock.
func BenchmarkAppendAuditEvents(b *testing.B) {
	ctx := context.Background()
	db := open(b, newSchema(b))
	defer db.Close()
	epoch := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	const batch = 16
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		events := make([]berth.AuditEvent, batch)
		for pb.Next() {
			for i := range events {
				events[i] = berth.AuditEvent{Time: epoch, Actor: "ci-web", Action: berth.AuditRegistryPull,
					Target: "team/app", Result: berth.AuditAllowed, RequestID: "r", Detail: map[string]string{"n": "1"}}
			}
			if err := db.AppendAuditEvents(ctx, events); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
