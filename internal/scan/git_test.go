package scan

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo is a repository made by a test with the git command, with fixed
// identities and dates and no user or system configuration.
type gitRepo struct {
	t    testing.TB
	dir  string
	tick int
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	date := fmt.Sprintf("2026-01-01T00:%02d:00Z", r.tick)
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Planter", "GIT_AUTHOR_EMAIL=planter@example.com", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Planter", "GIT_COMMITTER_EMAIL=planter@example.com", "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// commit stages everything and commits; it returns the commit id.
func (r *gitRepo) commit(msg string) string {
	r.t.Helper()
	r.tick++
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func TestScanHistoryFindsRemovedSecrets(t *testing.T) {
	r := newGitRepo(t)
	secret := berthSecret(t)
	gh := githubToken(t, "ghp_")
	key := privateKeyPEM(t)

	r.write("README.md", "# app\n")
	first := r.commit("start")
	r.write("deploy/config.yaml", "registry: berth.example.com\nclient_secret: "+secret+"\n")
	r.write("keys/id.pem", key)
	planted := r.commit("add deploy config")
	r.write("deploy/config.yaml", "registry: berth.example.com\nclient_secret: ${BERTH_CLIENT_SECRET}\n")
	if err := os.Remove(filepath.Join(r.dir, "keys/id.pem")); err != nil {
		t.Fatal(err)
	}
	removed := r.commit("read the secret from the environment")

	// A token committed on a branch that was never merged, and the same
	// secret committed again, elsewhere, on that branch.
	r.git("checkout", "-q", "-b", "experiment", first)
	r.write("ci.env", "GITHUB_TOKEN="+gh+"\n")
	r.write("copy/config.yaml", "registry: berth.example.com\nclient_secret: "+secret+"\n")
	branch := r.commit("try a token")
	r.git("checkout", "-q", "main")

	// The work tree holds nothing any more.
	res, err := ScanFiles(t.Context(), []string{r.dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 {
		t.Fatalf("work tree: %+v", res.Findings)
	}

	res, err = ScanHistory(t.Context(), r.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		file   string
		line   int
		kind   Kind
		commit string
	}
	wants := []want{
		{"ci.env", 1, KindGitHubToken, branch},
		{"copy/config.yaml", 2, KindBerthSecret, branch},
		{"deploy/config.yaml", 2, KindBerthSecret, planted},
		{"keys/id.pem", 1, KindPrivateKey, planted},
	}
	if len(res.Findings) != len(wants) {
		t.Fatalf("history: %d findings, want %d: %+v", len(res.Findings), len(wants), res.Findings)
	}
	for i, w := range wants {
		f := res.Findings[i]
		if f.File != filepath.Join(r.dir, w.file) || f.Line != w.line || f.Kind != w.kind || f.Commit != w.commit || f.Blob == "" {
			t.Errorf("finding %d: %s %s:%d commit %s, want %s %s:%d commit %s", i, f.Kind, f.File, f.Line, f.Commit, w.kind, w.file, w.line, w.commit)
		}
	}
	if res.Findings[1].Fingerprint != res.Findings[2].Fingerprint {
		t.Error("the same secret at two paths has two fingerprints")
	}
	if res.Stats.Commits != 4 || res.Stats.Files == 0 {
		t.Errorf("stats %+v", res.Stats)
	}
	_ = removed
}

func TestScanHistoryMergesAndLimits(t *testing.T) {
	r := newGitRepo(t)
	secret := berthSecret(t)
	r.write("a.txt", "a\n")
	base := r.commit("base")
	r.write("a.txt", "a\nmain\n")
	r.commit("main side")
	r.git("checkout", "-q", "-b", "side", base)
	r.write("a.txt", "a\nside\n")
	r.commit("side")
	r.git("checkout", "-q", "main")
	// A conflicted merge whose resolution holds the secret: only the merge
	// commit introduces it.
	r.tick++
	cmd := exec.Command("git", "-C", r.dir, "merge", "-q", "side")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	_ = cmd.Run() // conflicts, as intended
	r.write("a.txt", "a\ntoken: "+secret+"\n")
	r.write("big.txt", strings.Repeat("0123456789", 200)+secret)
	merge := r.commit("merge side")

	res, err := ScanHistory(t.Context(), r.dir, Options{MaxFileSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Commit != merge || res.Findings[0].File != filepath.Join(r.dir, "a.txt") {
		t.Fatalf("findings %+v, want a.txt in the merge %s", res.Findings, merge)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "larger than") {
		t.Errorf("skipped %+v, want the big blob", res.Skipped)
	}
}

func TestScanHistoryRefusesAPlainDirectory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	if IsGitRepository(dir) {
		t.Fatal("an empty directory is a git repository")
	}
	if _, err := ScanHistory(t.Context(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("err %v", err)
	}
	r := newGitRepo(t)
	if !IsGitRepository(r.dir) {
		t.Error("a fresh repository is not one")
	}
	// A repository without commits has no history and nothing to find.
	res, err := ScanHistory(t.Context(), r.dir, Options{})
	if err != nil || len(res.Findings) != 0 {
		t.Errorf("empty repository: %+v, %v", res, err)
	}
}
