package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/storetest"
)

// The hot paths of bench/run.sh, at the store: a manifest GET, a 4 KiB blob
// GET, a tiny-image push. The PostgreSQL store runs the same.

func BenchmarkFindManifest(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "berth.db"))
	defer db.Close()
	storetest.BenchFindManifest(b, db)
}

func BenchmarkFindBlobLink(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "berth.db"))
	defer db.Close()
	storetest.BenchFindBlobLink(b, db)
}

func BenchmarkTinyPush(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "berth.db"))
	defer db.Close()
	storetest.BenchTinyPush(b, db)
}
