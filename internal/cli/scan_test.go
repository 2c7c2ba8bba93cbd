package cli

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/scan"
)

// runScan runs berth scan args… through Run, as the binary does.
func runScan(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, vars, append([]string{"scan"}, args...)...)
}

// gitRepo makes a repository with the git command, with fixed identities
// and dates and no user or system configuration.
func gitRepo(t *testing.T) (dir string, run func(args ...string) string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir = t.TempDir()
	tick := 0
	run = func(args ...string) string {
		t.Helper()
		tick++
		date := fmt.Sprintf("2026-02-01T10:%02d:00Z", tick)
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_AUTHOR_DATE="+date,
			"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_COMMITTER_DATE="+date)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	return dir, run
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newSecretValue(t *testing.T) string {
	t.Helper()
	v, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

func TestScanFilesOutputsAndExitStatus(t *testing.T) {
	dir := t.TempDir()
	secret := newSecretValue(t)
	auth := base64.StdEncoding.EncodeToString([]byte("ci:" + secret))
	writeFile(t, filepath.Join(dir, "deploy.sh"), "#!/bin/sh\nexport BERTH_CLIENT_SECRET="+secret+"\n")
	writeFile(t, filepath.Join(dir, ".docker/config.json"), `{"auths": {"berth.example.com": {"auth": "`+auth+`"}}}`)
	writeFile(t, filepath.Join(dir, "clean.txt"), "nothing here but brt_notasecret\n")

	// Text: one line per finding on stdout, the summary on stderr, exit 1.
	code, stdout, stderr := runScan(t, nil, dir)
	if code != 1 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("text output %q", stdout)
	}
	want := filepath.Join(dir, "deploy.sh") + ":2:28 berth-client-secret " + secret[:berth.SecretHintLength] + "…"
	if !strings.Contains(stdout, want) {
		t.Errorf("text output %q lacks %q", stdout, want)
	}
	if !strings.Contains(stderr, "2 credentials found in 3 files") {
		t.Errorf("stderr %q", stderr)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, secret) || strings.Contains(out, auth) {
			t.Fatal("the output holds a secret")
		}
	}

	// JSON: one document; a baseline made of it accepts everything.
	code, stdout, _ = runScan(t, nil, dir, "-o", "json")
	var report scan.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != 1 || len(report.Findings) != 2 {
		t.Fatalf("json: exit %d, %v, %s", code, err, stdout)
	}
	for _, f := range []string{"file", "line", "column", "kind", "excerpt", "fingerprint"} {
		if !strings.Contains(stdout, `"`+f+`"`) {
			t.Errorf("json findings lack %q", f)
		}
	}
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	writeFile(t, baseline, stdout)
	code, stdout, stderr = runScan(t, nil, dir, "--baseline", baseline)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "no credentials found") || !strings.Contains(stderr, "2 accepted by the baseline") {
		t.Errorf("baseline: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// A new secret is not in the baseline.
	writeFile(t, filepath.Join(dir, "later.env"), "TOKEN="+newSecretValue(t)+"\n")
	code, stdout, _ = runScan(t, nil, dir, "--baseline", baseline, "-o", "json")
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != 1 || len(report.Findings) != 1 || report.Suppressed != 2 {
		t.Errorf("baseline with a new secret: exit %d, %+v", code, report)
	}

	// SARIF: a log with a result per finding.
	code, stdout, _ = runScan(t, nil, dir, "-o", "sarif")
	var log scan.SARIFLog
	if err := json.Unmarshal([]byte(stdout), &log); err != nil || code != 1 || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != 3 {
		t.Errorf("sarif: exit %d, %v, %s", code, err, stdout)
	}

	// Nothing found: exit 0.
	clean := t.TempDir()
	writeFile(t, filepath.Join(clean, "a.txt"), "hello\n")
	if code, _, stderr := runScan(t, nil, clean); code != 0 || !strings.Contains(stderr, "no credentials found in 1 file") {
		t.Errorf("clean: exit %d, %s", code, stderr)
	}
	// Refusals.
	if code, _, stderr := runScan(t, nil, clean, "-o", "xml"); code != 1 || !strings.Contains(stderr, "not text, json or sarif") {
		t.Errorf("-o xml: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runScan(t, nil, clean, "--git"); code != 1 || !strings.Contains(stderr, "not a git repository") {
		t.Errorf("--git on a plain directory: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runScan(t, nil, clean, "--max-file-size", "lots"); code != 1 || !strings.Contains(stderr, "invalid") {
		t.Errorf("--max-file-size lots: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runScan(t, nil, clean, "--baseline", filepath.Join(clean, "a.txt")); code != 1 || !strings.Contains(stderr, "baseline") {
		t.Errorf("--baseline of a text file: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runScan(t, nil, clean, "--progress"); code != 0 || !strings.Contains(stderr, "scanning: 1 file") {
		t.Errorf("--progress: exit %d, %q", code, stderr)
	}
}

func TestScanGitHistory(t *testing.T) {
	dir, git := gitRepo(t)
	secret := newSecretValue(t)
	writeFile(t, filepath.Join(dir, "README.md"), "# app\n")
	git("add", "-A")
	git("commit", "-q", "-m", "start")
	writeFile(t, filepath.Join(dir, "ci/env"), "BERTH_CLIENT_SECRET="+secret+"\n")
	git("add", "-A")
	git("commit", "-q", "-m", "ci credentials")
	planted := git("rev-parse", "HEAD")
	if err := os.Remove(filepath.Join(dir, "ci/env")); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "oops, remove them")

	// The work tree is clean, and a note points at --git.
	code, _, stderr := runScan(t, nil, dir)
	if code != 0 || !strings.Contains(stderr, "berth scan --git") {
		t.Errorf("work tree: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runScan(t, nil, "--git", dir)
	if code != 1 || !strings.Contains(stdout, filepath.Join(dir, "ci/env")+":1:21 berth-client-secret") ||
		!strings.Contains(stdout, "(commit "+planted[:12]+")") || !strings.Contains(stderr, "1 credential found in") {
		t.Errorf("history: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestScanRevokeEndToEnd(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	if code, _, stderr := runCLI(t, env, "principal", "create", "ci-web"); code != 0 {
		t.Fatalf("principal create: %s", stderr)
	}
	code, stdout, stderr := runCLI(t, env, "secret", "add", "ci-web", "-o", "json")
	if code != 0 {
		t.Fatalf("secret add: %s", stderr)
	}
	var added struct{ ID, Value string }
	if err := json.Unmarshal([]byte(stdout), &added); err != nil {
		t.Fatal(err)
	}
	ciAuth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ci-web:"+added.Value))}
	if resp, body := s.do(t, "GET", "/api/v1/principals/ci-web", ciAuth, nil); resp.StatusCode != 200 {
		t.Fatalf("the new secret does not authenticate: %d %s", resp.StatusCode, body)
	}

	// The secret leaked into a past commit, with one berth never issued.
	dir, git := gitRepo(t)
	unknown := newSecretValue(t)
	writeFile(t, filepath.Join(dir, "deploy.yaml"), "secret: "+added.Value+"\nother: "+unknown+"\n")
	git("add", "-A")
	git("commit", "-q", "-m", "deploy")
	writeFile(t, filepath.Join(dir, "deploy.yaml"), "secret: ${SECRET}\n")
	git("add", "-A")
	git("commit", "-q", "-m", "no secrets")

	code, stdout, stderr = runScan(t, env, "--git", "--revoke", "-o", "json", dir)
	var report scan.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != 1 {
		t.Fatalf("scan --revoke: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if len(report.Revocations) != 2 {
		t.Fatalf("revocations %+v", report.Revocations)
	}
	byStatus := map[string]scan.Revocation{}
	for _, v := range report.Revocations {
		byStatus[v.Status] = v
	}
	if v := byStatus[scan.RevocationRevoked]; v.Principal != "ci-web" || v.SecretID != added.ID || v.Excerpt != added.Value[:8]+"…" {
		t.Errorf("revoked %+v", v)
	}
	if _, ok := byStatus[scan.RevocationNotFound]; !ok {
		t.Errorf("the unknown secret: %+v", report.Revocations)
	}
	if strings.Contains(stdout+stderr, added.Value) || strings.Contains(stdout+stderr, unknown) {
		t.Error("the output holds a secret")
	}

	// The secret no longer authenticates, and says why.
	resp, body := s.do(t, "GET", "/api/v1/principals/ci-web", ciAuth, nil)
	var apiErr struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &apiErr); err != nil || resp.StatusCode != 401 || apiErr.Error.Code != string(berth.CodeSecretRevoked) {
		t.Errorf("after --revoke: %d %s, want 401 secret_revoked", resp.StatusCode, body)
	}

	// Text output reports it; a second run finds it already revoked.
	code, stdout, stderr = runScan(t, env, "--git", "--revoke", dir)
	if code != 1 || !strings.Contains(stdout, "already revoked "+added.Value[:8]+"…: secret "+added.ID+" of principal ci-web") {
		t.Errorf("second --revoke: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// --revoke without credentials stops before scanning.
	if code, _, stderr := runScan(t, map[string]string{}, "--revoke", dir); code != 1 || !strings.Contains(stderr, "credentials_missing") {
		t.Errorf("--revoke without credentials: exit %d, %s", code, stderr)
	}
}

// TestScanRevokeDockerConfig: the most common leak is a committed docker
// config.json, whose auths entry holds base64(CLIENT_ID:SECRET); --revoke
// decodes it and revokes the berth secret inside.
func TestScanRevokeDockerConfig(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	if code, _, stderr := runCLI(t, env, "principal", "create", "ci-web"); code != 0 {
		t.Fatalf("principal create: %s", stderr)
	}
	code, stdout, stderr := runCLI(t, env, "secret", "add", "ci-web", "-o", "json")
	var added struct{ ID, Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &added) != nil {
		t.Fatalf("secret add: %s%s", stdout, stderr)
	}
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci-web:" + added.Value))
	writeFile(t, filepath.Join(dir, ".docker", "config.json"), `{"auths":{"`+strings.TrimPrefix(s.url, "http://")+`":{"auth":"`+auth+`"}}}`)

	code, stdout, stderr = runScan(t, env, "--revoke", "-o", "json", dir)
	var report scan.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != 1 {
		t.Fatalf("scan --revoke: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if len(report.Revocations) != 1 || report.Revocations[0].Status != scan.RevocationRevoked || report.Revocations[0].SecretID != added.ID {
		t.Fatalf("revocations %+v, want the secret inside the auths entry revoked", report.Revocations)
	}
	if strings.Contains(stdout+stderr, added.Value) || strings.Contains(stdout+stderr, auth) {
		t.Error("the output holds the secret")
	}
	ciAuth := map[string]string{"Authorization": "Basic " + auth}
	if resp, _ := s.do(t, "GET", "/api/v1/principals/ci-web", ciAuth, nil); resp.StatusCode != 401 {
		t.Errorf("the leaked secret still authenticates: %d", resp.StatusCode)
	}
}
