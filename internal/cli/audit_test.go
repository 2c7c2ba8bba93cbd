package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/sqlite"
)

// auditFolder returns a data folder whose metadata store holds events, each
// appended on its own, as a server would have written them.
func auditFolder(t *testing.T, events ...berth.AuditEvent) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ev := range events {
		if err := db.AppendAuditEvents(context.Background(), []berth.AuditEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sampleAudit is a small day of a registry: times are relative to now, so
// that --since DURATION selects by them.
func sampleAudit(now time.Time) []berth.AuditEvent {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	return []berth.AuditEvent{
		{Time: ago(30 * time.Hour), Actor: "admin", ActorID: "a-1", Action: berth.AuditRoleAssign, Target: "ci-web",
			Result: berth.AuditAllowed, Detail: map[string]string{"role": "pull", "scope": "team/*"}},
		{Time: ago(5 * time.Hour), Actor: "ci-web", ActorID: "w-1", Source: "10.0.0.7", Action: berth.AuditRegistryPull,
			Target: "team/web", Result: berth.AuditAllowed, RequestID: "req-2", CredentialID: "sec-1"},
		{Time: ago(2 * time.Hour), Actor: "ci-web", ActorID: "w-1", Source: "10.0.0.7", Action: berth.AuditRegistryPush,
			Target: "team/web", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing, RequestID: "req-3",
			Detail: map[string]string{"missing_role": "push", "message": "principal ci-web may not content:write on repository team/web"}},
		{Time: ago(30 * time.Minute), Actor: "", Source: "192.0.2.9", Action: berth.AuditAuthBasic,
			Result: berth.AuditDenied, Reason: berth.CodeSecretExpired},
		{Time: ago(10 * time.Minute), Actor: "ci-api", ActorID: "p-1", Action: berth.AuditRegistryPull, Target: "other/api",
			Result: berth.AuditAllowed},
	}
}

// runAuditJSON runs berth audit … -o json, which must succeed, and returns
// the sequence numbers it printed and the decoded events.
func runAuditJSON(t *testing.T, dir string, args ...string) ([]int64, []berth.AuditEvent, string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append([]string{"audit", "--data", dir, "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("audit %v exited %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	var events []berth.AuditEvent
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&events); err != nil || events == nil {
		t.Fatalf("audit -o json printed no array of events (%v):\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("audit -o json printed more than one document:\n%s", stdout)
	}
	seqs := []int64{}
	for _, ev := range events {
		seqs = append(seqs, ev.Seq)
	}
	return seqs, events, stderr
}

func TestAuditFilters(t *testing.T) {
	now := time.Now()
	dir := auditFolder(t, sampleAudit(now)...)
	tests := []struct {
		args []string
		want []int64
	}{
		{nil, []int64{1, 2, 3, 4, 5}},
		{[]string{"--since", "6h"}, []int64{2, 3, 4, 5}},
		{[]string{"--since", "1d"}, []int64{2, 3, 4, 5}},
		{[]string{"--since", "2d"}, []int64{1, 2, 3, 4, 5}},
		{[]string{"--since", now.Add(-time.Hour).UTC().Format(time.RFC3339)}, []int64{4, 5}},
		{[]string{"--until", "1h"}, []int64{1, 2, 3}},
		{[]string{"--since", "6h", "--until", "1h"}, []int64{2, 3}},
		{[]string{"--principal", "ci-web"}, []int64{2, 3}},
		{[]string{"--principal", "p-1"}, []int64{5}},
		{[]string{"--repository", "team/web"}, []int64{2, 3}},
		{[]string{"--repository", "team/*"}, []int64{2, 3}},
		{[]string{"--repository", "other/*"}, []int64{5}},
		{[]string{"--result", "denied"}, []int64{3, 4}},
		{[]string{"--result", "allowed"}, []int64{1, 2, 5}},
		{[]string{"--code", "role_missing"}, []int64{3}},
		{[]string{"--code", "secret_expired", "--result", "denied"}, []int64{4}},
		{[]string{"--action", "registry.pull"}, []int64{2, 5}},
		{[]string{"--principal", "nobody"}, []int64{}},
		{[]string{"--limit", "2"}, []int64{4, 5}},
		{[]string{"--limit", "0"}, []int64{1, 2, 3, 4, 5}},
		{[]string{"--after", "2", "--limit", "2"}, []int64{3, 4}},
		{[]string{"--after", "4"}, []int64{5}},
	}
	for _, tt := range tests {
		got, _, _ := runAuditJSON(t, dir, tt.args...)
		if !slices.Equal(got, tt.want) {
			t.Errorf("audit %v: events %v, want %v", tt.args, got, tt.want)
		}
	}
	// A limit that cuts the answer says so, on stderr.
	if _, _, stderr := runAuditJSON(t, dir, "--limit", "2"); !strings.Contains(stderr, "--limit 0") {
		t.Errorf("audit --limit 2 of 5 said nothing on stderr: %q", stderr)
	}
	if _, _, stderr := runAuditJSON(t, dir, "--limit", "5"); stderr != "" {
		t.Errorf("audit --limit 5 of 5 printed %q on stderr", stderr)
	}
}

func TestAuditJSONFields(t *testing.T) {
	dir := auditFolder(t, sampleAudit(time.Now())...)
	code, stdout, stderr := runCLI(t, nil, "audit", "--data", dir, "-o", "json", "--code", "role_missing")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("not one event: %v\n%s", err, stdout)
	}
	ev := raw[0]
	want := map[string]any{"seq": 3.0, "actor": "ci-web", "actor_id": "w-1", "source": "10.0.0.7", "action": "registry.push",
		"target": "team/web", "result": "denied", "reason": "role_missing", "request_id": "req-3"}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %v", k, ev[k], v)
		}
	}
	if d, _ := ev["detail"].(map[string]any); d["missing_role"] != "push" {
		t.Errorf("detail = %v", ev["detail"])
	}
	if ts, _ := ev["time"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("time %q is not RFC 3339 in UTC", ts)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q: %v", ts, err)
	}
	for _, k := range []string{"hash", "prev_hash"} {
		if h, _ := ev[k].(string); len(h) != 64 {
			t.Errorf("%s = %q, want a hex SHA-256", k, h)
		}
	}
}

func TestAuditText(t *testing.T) {
	dir := auditFolder(t, sampleAudit(time.Now())...)
	code, stdout, stderr := runCLI(t, nil, "audit", "--data", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines for 5 events:\n%s", len(lines), stdout)
	}
	denied := lines[2]
	for _, want := range []string{"#3 denied registry.push ci-web team/web role_missing", "from=10.0.0.7", "request=req-3",
		"missing_role=push", `message="principal ci-web may not content:write on repository team/web"`} {
		if !strings.Contains(denied, want) {
			t.Errorf("line %q lacks %q", denied, want)
		}
	}
	// A failed authentication names no actor: its fields show as "-".
	if !strings.Contains(lines[3], "#4 denied auth.basic - - secret_expired from=192.0.2.9") {
		t.Errorf("line %q", lines[3])
	}
}

func TestAuditRefusesBadFlags(t *testing.T) {
	dir := auditFolder(t, sampleAudit(time.Now())...)
	tests := []struct {
		args []string
		code berth.Code
	}{
		{[]string{"--result", "maybe"}, berth.CodeInvalid},
		{[]string{"--code", "no_such_code"}, berth.CodeInvalid},
		{[]string{"--since", "yesterday"}, berth.CodeInvalid},
		{[]string{"--since", "-5h"}, berth.CodeInvalid},
		{[]string{"--until", "0s"}, berth.CodeInvalid},
		{[]string{"--repository", "registry"}, berth.CodeInvalid},
		{[]string{"--repository", "Team/Web"}, berth.CodeInvalid},
		{[]string{"--limit", "-1"}, berth.CodeInvalid},
		{[]string{"extra"}, berth.CodeInvalid},
		{[]string{"--data", filepath.Join(dir, "nothing-here")}, berth.CodeNotFound},
		{[]string{"--data", t.TempDir()}, berth.CodeNotFound},
	}
	for _, tt := range tests {
		args := append([]string{"audit", "-o", "json", "--data", dir}, tt.args...)
		code, stdout, _ := runCLI(t, nil, args...)
		var out struct {
			Error struct {
				Code berth.Code `json:"code"`
				Hint string     `json:"hint"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); code != 1 || err != nil || out.Error.Code != tt.code || out.Error.Hint == "" {
			t.Errorf("audit %v: exit %d, %s; want exit 1 with code %s and a hint", tt.args, code, stdout, tt.code)
		}
	}
}

func TestParseAuditTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	tests := map[string]time.Time{
		"":                          {},
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"1d12h":                     now.Add(-36 * time.Hour),
		"2026-03-01T00:00:00Z":      time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T01:00:00+01:00": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	for in, want := range tests {
		got, err := berth.ParseAuditTime("--since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseAuditTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	dir := auditFolder(t, sampleAudit(time.Now())...)
	code, stdout, stderr := runCLI(t, nil, "audit", "verify", "--data", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("verify of an intact log exited %d: %s %s", code, stdout, stderr)
	}
	var ok api.AuditVerification
	if err := json.Unmarshal([]byte(stdout), &ok); err != nil || !ok.Verified || ok.Events != 5 || ok.Head.Seq != 5 || len(ok.Head.Hash) != 64 {
		t.Errorf("verify -o json = %s (%v)", stdout, err)
	}
	code, stdout, _ = runCLI(t, nil, "audit", "verify", "--data", dir)
	if code != 0 || !strings.Contains(stdout, "5 events, 1 to 5") {
		t.Errorf("verify text = %d %q", code, stdout)
	}

	// Deleting the denied push, as someone hiding it would.
	raw, err := sql.Open("sqlite", filepath.Join(dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM audit_blocks WHERE first_seq = 3`); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, nil, "audit", "verify", "--data", dir, "-o", "json")
	var failed struct {
		Error struct {
			Code    berth.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(stdout), &failed); code != 1 || err != nil || failed.Error.Code != berth.CodeAuditTampered ||
		!strings.Contains(failed.Error.Message, "event 3") {
		t.Errorf("verify after deleting event 3: exit %d, %s; want exit 1, audit_tampered naming event 3", code, stdout)
	}
	code, _, stderr = runCLI(t, nil, "audit", "verify", "--data", dir)
	if code != 1 || !strings.Contains(stderr, "[audit_tampered]") {
		t.Errorf("verify text after tampering: exit %d, stderr %q", code, stderr)
	}
}

func TestAuditVerifyEmpty(t *testing.T) {
	dir := auditFolder(t)
	code, stdout, stderr := runCLI(t, nil, "audit", "verify", "--data", dir)
	if code != 0 || !strings.Contains(stdout, "empty") {
		t.Errorf("verify of an empty log: %d %q %q", code, stdout, stderr)
	}
	if _, events, _ := runAuditJSON(t, dir); len(events) != 0 {
		t.Errorf("audit of an empty log: %v", events)
	}
}

// TestRemoteAuditReadsTheEndBackwards: berth audit --limit N through the
// server reads the last N events in pages backwards from the end (before=
// cursors), not the whole log from its start; --limit 0 still reads it all.
func TestRemoteAuditReadsTheEndBackwards(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	for i := range 9 {
		if code, _, stderr := runCLI(t, env, "principal", "create", fmt.Sprintf("bot-%d", i)); code != 0 {
			t.Fatal(stderr)
		}
	}
	orig := auditPage
	auditPage = 2
	t.Cleanup(func() { auditPage = orig })
	names := func(args ...string) []string {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, append([]string{"audit", "--action", "principal.create", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("audit %v: %s", args, stderr)
		}
		var evs []berth.AuditEvent
		if err := json.Unmarshal([]byte(stdout), &evs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Target)
		}
		return out
	}
	// The log is written behind the requests: wait for all nine.
	for deadline := time.Now().Add(5 * time.Second); len(names("--limit", "0")) < 9; {
		if time.Now().After(deadline) {
			t.Fatalf("the audit log holds %v", names("--limit", "0"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The command's requests, counted by a proxy in front of the server
	// before it forwards each: when the command returns, every one is.
	var requests atomic.Int32
	target, _ := url.Parse(s.url)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/audit" {
			requests.Add(1)
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	env[envURL] = proxy.URL
	got := names("--limit", "5")
	if want := []string{"bot-4", "bot-5", "bot-6", "bot-7", "bot-8"}; !slices.Equal(got, want) {
		t.Fatalf("audit --limit 5: %v, want %v", got, want)
	}
	// Six events (one more tells whether the limit cut) in pages of two:
	// three requests, where reading forwards would take five or more.
	if n := requests.Load(); n != 3 {
		t.Errorf("audit --limit 5 sent %d requests, want 3 (pages of 2 read backwards)", n)
	}
}
