package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuild(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/berth-dev/berth", Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	const rev = "de2abc61914976e978dbca702939f5a7311b2ea7"
	for _, tt := range []struct {
		name string
		read func() (*debug.BuildInfo, bool)
		want string
	}{
		{"a tagged go install", info("v1.2.3"), "v1.2.3"},
		{"go build in a clone", info("v0.0.0-20261206025302-de2abc619149", "vcs.revision", rev, "vcs.modified", "false"), "v0.0.0-20261206025302-de2abc619149"},
		{"a revision without a module version", info("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "devel-de2abc619149+dirty"},
		{"go run, go test", info("(devel)"), "(devel)"},
		{"no build information", func() (*debug.BuildInfo, bool) { return nil, false }, "(devel)"},
	} {
		if got := readBuild(tt.read).version(); got != tt.want {
			t.Errorf("%s: version %q, want %q", tt.name, got, tt.want)
		}
		if got := readBuild(tt.read).version(); got == "dev" {
			t.Errorf("%s: version is just dev", tt.name)
		}
	}
	if d := readBuild(info("(devel)")).describe(); !strings.Contains(d, "go install ./cmd/berth") {
		t.Errorf("a build that recorded nothing does not say so: %q", d)
	}
}

// TestVersionOfBuiltBinary builds berth from a clone of the committed source
// (a git worktree gets no VCS stamp from the go command, a clone does) and
// checks that berth version and berth --version print the revision.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and builds the berth binary")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "-q", "--shared", strings.TrimSpace(string(top)), src).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "berth")
	goBuild := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/berth")
	goBuild.Dir = src
	goBuild.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
	if out, err := goBuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rev := strings.TrimSpace(string(head))
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("berth %v: %v", args, err)
		}
		if !strings.Contains(string(out), rev[:12]) {
			t.Errorf("berth %v printed %q; want the revision %s", args, out, rev)
		}
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	var b build
	if err != nil || json.Unmarshal(out, &b) != nil || b.Revision != rev {
		t.Errorf("berth version -o json: %v %s; want revision %s", err, out, rev)
	}
}
