package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// TestLoginMakesTheHelperResolvable: berth login registers
// docker-credential-berth only once a client can run it. When the running
// berth sits in a folder of PATH, login makes the link there; otherwise it
// refuses to register the helper and names the command that makes the link.
func TestLoginMakesTheHelperResolvable(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	host := strings.TrimPrefix(s.url, "http://")
	bin := t.TempDir()
	exe := filepath.Join(bin, "berth")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	executable = func() (string, error) { return exe, nil }
	t.Cleanup(func() { executable = os.Executable })

	// berth is on PATH: the link appears beside it.
	home := t.TempDir()
	env := map[string]string{"HOME": home, "DOCKER_CONFIG": filepath.Join(home, "docker"), "PATH": t.TempDir() + ":" + bin,
		envClientID: id, envClientSecret: secret}
	code, stdout, stderr := runCLI(t, env, "login", host)
	if code != 0 {
		t.Fatalf("berth login: %d\n%s%s", code, stdout, stderr)
	}
	link := filepath.Join(bin, "docker-credential-berth")
	if target, err := os.Readlink(link); err != nil || target != exe {
		t.Fatalf("no link %s to berth: %q %v", link, target, err)
	}
	if !strings.Contains(stderr, link) {
		t.Errorf("login does not say it made the link: %q", stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "docker", "config.json")); !strings.Contains(string(b), `"`+host+`": "berth"`) {
		t.Errorf("credHelpers not set: %s", b)
	}

	// berth is not on PATH, nor the helper: nothing is registered, and the
	// refusal names the exact command.
	home = t.TempDir()
	env = map[string]string{"HOME": home, "DOCKER_CONFIG": filepath.Join(home, "docker"), "PATH": filepath.Join(home, "bin") + ":/usr/bin",
		envClientID: id, envClientSecret: secret}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, env, "login", host, "-o", "json")
	if got := jsonErrorCode(t, stdout); code != 1 || got != "credential_helper_not_found" {
		t.Fatalf("login without a resolvable helper: exit %d, code %q; want 1, credential_helper_not_found\n%s", code, got, stdout)
	}
	if want := "ln -s " + berth.ShellQuote(exe) + " " + berth.ShellQuote(filepath.Join(home, "bin", "docker-credential-berth")); !strings.Contains(stdout, want) {
		t.Errorf("the refusal does not name %q: %s", want, stdout)
	}
	if _, err := os.Stat(filepath.Join(home, "docker", "config.json")); !os.IsNotExist(err) {
		t.Errorf("the docker configuration was written although no client could run the helper")
	}
	if _, _, ok, _ := findLogin(mapEnv(env), host); !ok {
		t.Errorf("the login was not stored for the berth CLI")
	}
}
