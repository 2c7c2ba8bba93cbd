package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Find returns the path of the program name: on PATH, else in the tools
// folder of .ci/run ($BERTH_TOOLS/bin, or berth-tools/bin in the user's cache
// folder), else in GOBIN or GOPATH/bin. When it is missing the test is
// skipped, or fails under BERTH_E2E=1, which .ci/run sets so that a missing
// tool is never a silent skip.
func Find(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("BERTH_TOOLS"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if d, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(d, "berth-tools", "bin"))
	}
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("BERTH_E2E") == "1" {
		t.Fatalf("BERTH_E2E=1 but %s is not installed (run .ci/run)", name)
	}
	t.Skipf("%s is not installed (run .ci/run, or set BERTH_E2E=1 to make this a failure)", name)
	return ""
}
