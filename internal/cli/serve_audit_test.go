package cli

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// TestServeAuditsDecisions runs serve, makes one allowed push, one refused
// login and one management change, stops it (which flushes the audit log),
// and finds each decision in berth audit, whose chain verifies.
func TestServeAuditsDecisions(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	blob := []byte("audited layer")
	d := sha256Digest(blob)
	if resp, body := s.do(t, "POST", "/v2/team/app/blobs/uploads/?digest="+d, nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	clientID, _ := s.admin(t)
	bad := "Basic " + basicCredentials(clientID, "brt_notthesecret")
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", map[string]string{"Authorization": bad}, nil); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	if resp, body := s.do(t, "POST", "/api/v1/principals", map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"ci-web"}`)); resp.StatusCode != 201 {
		t.Fatalf("create principal: %d %s", resp.StatusCode, body)
	}
	// Stopping serve flushes the asynchronous audit writer, so everything
	// above is in the log when berth audit reads it.
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	code, stdout, stderr := runCLI(t, nil, "audit", "--data", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	var events []struct {
		Action string     `json:"action"`
		Actor  string     `json:"actor"`
		Target string     `json:"target"`
		Result string     `json:"result"`
		Reason berth.Code `json:"reason"`
	}
	if err := json.Unmarshal([]byte(stdout), &events); err != nil {
		t.Fatalf("audit -o json: %v: %s", err, stdout)
	}
	want := map[string]bool{
		"registry.push team/app allowed admin":  false,
		"auth.basic  denied " + clientID:        false,
		"principal.create ci-web allowed admin": false,
	}
	for _, e := range events {
		key := e.Action + " " + e.Target + " " + e.Result + " " + e.Actor
		if _, ok := want[key]; ok {
			want[key] = true
		}
		if e.Action == "auth.basic" && e.Reason != berth.CodeSecretInvalid {
			t.Errorf("refused login recorded with reason %q, want secret_invalid", e.Reason)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no audit event %q in %s", k, stdout)
		}
	}
	_, secret := s.admin(t)
	if strings.Contains(stdout, secret) || strings.Contains(stdout, "brt_notthesecret") {
		t.Error("the audit log holds a secret")
	}
	if code, _, stderr := runCLI(t, nil, "audit", "verify", "--data", dir); code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, stderr)
	}
}

// basicCredentials is the value of Basic credentials after "Basic ".
func basicCredentials(user, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
}

// TestAuditCannotBeForged: a principal with no roles asks to delete a
// principal whose "name" holds a newline, a forged audit line and terminal
// escapes. The refusal is recorded, and berth audit prints it on one line,
// with no escape sequence and no line of its own making.
func TestAuditCannotBeForged(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	hdr := map[string]string{"Content-Type": "application/json"}
	if resp, body := s.do(t, "POST", "/api/v1/principals", hdr, []byte(`{"name":"mallory"}`)); resp.StatusCode != 201 {
		t.Fatalf("create principal: %d %s", resp.StatusCode, body)
	}
	resp, body := s.do(t, "POST", "/api/v1/principals/mallory/secrets", hdr, []byte(`{}`))
	var secret struct {
		Value string `json:"value"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &secret) != nil {
		t.Fatalf("add secret: %d %s", resp.StatusCode, body)
	}
	const forged = "x%0A2026-01-01T00:00:00.000Z%20%239999%20allowed%20principal.delete%20admin%20x%20-%1B[31m%E2%80%AEred%1B]0;title%07"
	mallory := map[string]string{"Authorization": "Basic " + basicCredentials("mallory", secret.Value)}
	if resp, body := s.do(t, "DELETE", "/api/v1/principals/"+forged, mallory, nil); resp.StatusCode < 400 {
		t.Fatalf("the delete was not refused: %d %s", resp.StatusCode, body)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, stdout, stderr := runCLI(t, nil, "audit", "--data", dir, "--principal", "mallory")
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], " denied principal.delete mallory ") {
		t.Fatalf("one refused delete by mallory, printed as %d lines:\n%s", len(lines), stdout)
	}
	for _, bad := range []string{"\x1b", "\u202e", "\x07"} {
		if strings.Contains(stdout, bad) {
			t.Errorf("berth audit printed %q:\n%s", bad, stdout)
		}
	}
}
