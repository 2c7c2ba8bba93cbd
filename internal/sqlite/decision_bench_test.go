package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth"
)

// BenchmarkColdDecision measures an authorization decision that finds nothing
// cached, as oauth.Provider takes it for a principal it has not seen within
// its cache's lifetime: read the principal, its secrets and its role
// assignments from a store holding 10,000 principals and 100,000 assignments,
// build its access index and decide. Issue 4's target is under 200 µs.
func BenchmarkColdDecision(b *testing.B) {
	const principals, perPrincipal = 10_000, 10
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Bulk load in one transaction: the store's one-row API would take minutes.
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, principals)
	for i := range principals {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO principals (id, name, client_id, kind, disabled, created) VALUES (?, ?, ?, 'service', 0, 0)`,
			ids[i], fmt.Sprintf("p%d", i), fmt.Sprintf("10000000-0000-4000-8000-%012d", i)); err != nil {
			b.Fatal(err)
		}
		for j := range perPrincipal {
			if _, err := tx.ExecContext(ctx, `INSERT INTO role_assignments (principal_id, scope, role, created, created_by) VALUES (?, ?, 'push', 0, '')`,
				ids[i], fmt.Sprintf("team%d/app%d", i%100, j)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
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
