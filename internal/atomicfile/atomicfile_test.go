package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/atomicfile"
)

func TestWriteReplacesWholeFileWithMode0600(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"first, longer content\n", "second\n"} {
		if err := atomicfile.Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("after writing %q, the file holds %q, %v", content, got, err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("the folder holds %d entries (%v), want only the file: a temporary file was left", len(entries), err)
	}
}

func TestWriteIntoMissingFolderFails(t *testing.T) {
	if err := atomicfile.Write(filepath.Join(t.TempDir(), "missing", "state.json"), []byte("x")); err == nil {
		t.Fatal("Write into a missing folder succeeded")
	}
}
