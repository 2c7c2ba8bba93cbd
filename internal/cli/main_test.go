package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testHelperPATH is a folder holding docker-credential-berth, a link to this
// test binary, which then runs as the credential helper (TestMain): the PATH
// of every test that does not set its own (mapEnv), so that berth login finds
// its helper, and doctor can run it.
var testHelperPATH string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == helperCommand {
		os.Exit(RunCredentialHelper(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	dir, err := os.MkdirTemp("", "berth-helper-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	self, err := os.Executable()
	if err == nil {
		err = os.Symlink(self, filepath.Join(dir, helperCommand))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testHelperPATH = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
