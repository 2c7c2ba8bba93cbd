package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/storetest"
)

// BenchmarkColdDecision is storetest.BenchColdDecision on a store bulk-loaded
// in one transaction.
func BenchmarkColdDecision(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range storetest.ColdDecisionPrincipals {
		id := storetest.ColdDecisionID(i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO principals (id, name, client_id, kind, disabled, created) VALUES (?, ?, ?, 'service', 0, 0)`,
			id, fmt.Sprintf("p%d", i), storetest.ColdDecisionClientID(i)); err != nil {
			b.Fatal(err)
		}
		for j := range storetest.ColdDecisionRoles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO role_assignments (principal_id, scope, role, created, created_by) VALUES (?, ?, 'push', 0, '')`,
				id, fmt.Sprintf("team%d/app%d", i%100, j)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	storetest.BenchColdDecision(b, db)
}
