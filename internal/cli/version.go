package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is what this binary says it is: the -ldflags "-X
// github.com/berth-dev/berth/internal/cli.Version=…" of a release build, else
// what the Go toolchain recorded (see readBuild).
var Version = readBuild(debug.ReadBuildInfo).version()

// build is what the binary records of its own making.
type build struct {
	Version  string `json:"version"`            // the module version, or "(devel)"
	Revision string `json:"revision,omitempty"` // the VCS revision
	Time     string `json:"time,omitempty"`     // the revision's commit time
	Modified bool   `json:"modified"`           // built from a work tree with changes
	Go       string `json:"go"`
}

// readBuild reads the binary's build information: the main module's version
// (a tag, or a pseudo-version naming the commit, for go install and go
// build in a clone) and the VCS settings. go run and go test builds may
// record neither (they are built without VCS stamping); then only "(devel)".
func readBuild(read func() (*debug.BuildInfo, bool)) build {
	b := build{Version: "(devel)", Go: runtime.Version()}
	info, ok := read()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// version is the one-word version: the module version when it is a real one,
// else the VCS revision (12 hex characters, "+dirty" for a modified work
// tree), else "(devel)", which says honestly that nothing was recorded.
func (b build) version() string {
	if b.Version != "" && b.Version != "(devel)" {
		return b.Version
	}
	if b.Revision != "" {
		rev := b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			rev += "+dirty"
		}
		return "devel-" + rev
	}
	return "(devel)"
}

func newVersionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and VCS revision this binary was built from",
		Args:  argsExactly(0, "berth version"),
		RunE: func(*cobra.Command, []string) error {
			b := readBuild(debug.ReadBuildInfo)
			b.Version = Version // a release build's -ldflags -X wins
			if e.output == "json" {
				return e.printJSON(b)
			}
			fmt.Fprintln(e.stdout, b.describe())
			return nil
		},
	}
}

// describe writes b on one line: "berth VERSION (revision R, TIME, GO)".
func (b build) describe() string {
	var facts []string
	if b.Revision != "" {
		rev := "revision " + b.Revision
		if b.Modified {
			rev += " with uncommitted changes"
		}
		facts = append(facts, rev)
	}
	if b.Time != "" {
		facts = append(facts, b.Time)
	}
	if b.Version == "(devel)" && b.Revision == "" {
		facts = append(facts, "no module version or VCS revision was recorded: go run and go test builds lack them; go install ./cmd/berth records both")
	}
	facts = append(facts, b.Go)
	return fmt.Sprintf("berth %s (%s)", b.Version, strings.Join(facts, ", "))
}
