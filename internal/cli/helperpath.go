package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth"
)

// executable returns the path of the running berth; tests replace it.
var executable = os.Executable

// helperCommand is the file name docker's clients run for credHelpers "berth".
const helperCommand = "docker-credential-" + helperName

// findOnPath returns the executable file called name in a folder of PATH
// (getenv's), as docker, crane, skopeo and oras look a credential helper up.
func findOnPath(getenv func(string) string, name string) (string, bool) {
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if dir == "" {
			continue // docker's clients do not look in the current folder
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// onPath reports whether dir is a folder of PATH.
func onPath(getenv func(string) string, dir string) bool {
	for _, d := range filepath.SplitList(getenv("PATH")) {
		if d != "" && filepath.Clean(d) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// ensureHelper makes docker-credential-berth resolvable before berth login
// names it in the docker configuration: found on PATH, it is used as it is;
// else, when the running berth sits in a folder of PATH, a symbolic link to
// it is made there (created is true). Otherwise it returns
// credential_helper_not_found with the exact command that makes the link: a
// helper entry that no client can run would break every pull and push of
// the host, and hide the credential docker had before.
func ensureHelper(getenv func(string) string) (path string, created bool, err error) {
	if p, ok := findOnPath(getenv, helperCommand); ok {
		return p, false, nil
	}
	exe, err := executable()
	if err == nil {
		if r, rerr := filepath.EvalSymlinks(exe); rerr == nil {
			exe = r
		}
	}
	if err == nil && onPath(getenv, filepath.Dir(exe)) {
		link := filepath.Join(filepath.Dir(exe), helperCommand)
		if os.Symlink(exe, link) == nil {
			if p, ok := findOnPath(getenv, helperCommand); ok {
				return p, true, nil
			}
		}
	}
	return "", false, helperMissing(getenv, exe)
}

// helperMissing is credential_helper_not_found, with the command that puts
// docker-credential-berth on PATH as a link to exe.
func helperMissing(getenv func(string) string, exe string) error {
	e := berth.Errorf(berth.CodeCredentialHelperNotFound, "%s is not on PATH, so docker, crane, skopeo and oras cannot run it", helperCommand)
	if exe == "" || strings.Contains(exe, string(filepath.Separator)+"go-build") {
		// go run's binary is temporary: a link to it would break.
		return e.WithHint("go install ./cmd/berth (it goes to $(go env GOPATH)/bin), then ln -s \"$(go env GOPATH)/bin/berth\" \"$(go env GOPATH)/bin/%s\", with that folder on PATH", helperCommand)
	}
	home := getenv("HOME")
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if home != "" && dir != "" && strings.HasPrefix(filepath.Clean(dir)+string(filepath.Separator), filepath.Clean(home)+string(filepath.Separator)) {
			return e.WithHint("ln -s %s %s", berth.ShellQuote(exe), berth.ShellQuote(filepath.Join(dir, helperCommand)))
		}
	}
	return e.WithHint("sudo ln -s %s %s", berth.ShellQuote(exe), berth.ShellQuote(filepath.Join("/usr/local/bin", helperCommand)))
}

// helperNote says what ensureHelper did, for berth login's output.
func helperNote(path string, created bool) string {
	if created {
		return fmt.Sprintf("made %s, a link to berth, so that clients find the helper", path)
	}
	return ""
}
