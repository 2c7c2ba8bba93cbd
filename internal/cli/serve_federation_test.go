package cli

import (
	"net"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/oidctest"
)

// TestServeWiresFederation checks, through berth serve, that connection
// verify loads issuers' keys with the server's Federation.
func TestServeWiresFederation(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	issuer := oidctest.New(t)

	for _, args := range [][]string{
		{"principal", "create", "ci"},
		{"pipeline", "create", "live", "--issuer", issuer.URL, "--subject", "repo:org/web:*"},
		{"pipeline", "create", "gone", "--issuer", closed, "--subject", "repo:org/web:*"},
		{"connection", "create", "web", "--principal", "ci"},
		{"connection", "authorize", "web", "--pipeline", "live"},
	} {
		if code, _, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d, %s", args, code, stderr)
		}
	}
	code, stdout, stderr := runCLI(t, env, "connection", "verify", "web")
	if code != 0 || !strings.Contains(stdout, "✓ issuer live") {
		t.Errorf("a live issuer: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	runCLI(t, env, "connection", "authorize", "web", "--pipeline", "gone")
	code, stdout, stderr = runCLI(t, env, "connection", "verify", "web")
	if code != 1 || !strings.Contains(stdout, "✗ issuer gone") || !strings.Contains(stderr, "checks failed") {
		t.Errorf("an unreachable issuer: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
