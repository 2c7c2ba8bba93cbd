package cli

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestLoginUnreachable: a server that does not answer is server_unreachable,
// not invalid, and an https URL to a plain-http loopback server is answered
// with the http URL that works.
func TestLoginUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	env := map[string]string{"HOME": t.TempDir(), envClientID: "x", envClientSecret: "y"}
	errorOf := func(stdout string) (code, hint string) {
		var doc struct {
			Error struct{ Code, Hint string }
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatalf("not one JSON document: %s", stdout)
		}
		return doc.Error.Code, doc.Error.Hint
	}
	code, stdout, _ := runCLI(t, env, "login", "http://"+closed, "-o", "json")
	if got, hint := errorOf(stdout); code != 1 || got != "server_unreachable" || !strings.Contains(hint, "berth serve") {
		t.Errorf("connection refused: exit %d, %s %q; want server_unreachable naming berth serve", code, got, hint)
	}

	s := startServe(t, t.TempDir())
	host := strings.TrimPrefix(s.url, "http://")
	code, stdout, _ = runCLI(t, env, "login", "https://"+host, "-o", "json")
	if got, hint := errorOf(stdout); code != 1 || got != "server_unreachable" || !strings.Contains(hint, "berth login http://"+host) {
		t.Errorf("https to a plain-http loopback server: exit %d, %s %q; want the http URL", code, got, hint)
	}
}
