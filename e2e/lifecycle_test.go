package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImmutableTagsAgainstEveryClient: with 'v*' immutable on team/*, crane,
// skopeo and oras may create v1 but none may move it, and neither crane
// delete nor a DELETE of the tag removes it; each refusal names
// tag_immutable. A tag outside the pattern still moves.
func TestImmutableTagsAgainstEveryClient(t *testing.T) {
	needBerth(t)
	crane, skopeo, oras := tool(t, "crane"), tool(t, "skopeo"), tool(t, "oras")
	s := startServer(t, t.TempDir())
	p := newPrincipal(t, s, "ci-web", "push", "team/*")
	asAdmin(t, s, "role", "assign", "--principal", "ci-web", "--role", "delete", "--scope", "team/*")
	asAdmin(t, s, "immutable", "add", "team/*", "--tags", "v*")

	env := craneLogin(t, crane, s, p.clientID, p.secret)
	o := cmdOpts{env: env}
	first, firstDigest := writeRandomLayout(t, "v1")
	second, _ := writeRandomLayout(t, "v1")
	ref := s.addr + "/team/app:v1"
	mustRunWith(t, o, crane, "push", "--insecure", first, ref)
	mustRunWith(t, o, crane, "push", "--insecure", first, ref) // the same image again moves nothing

	refused := func(t *testing.T, what, stderr string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded on an immutable tag", what)
		}
		if !strings.Contains(stderr, "tag_immutable") {
			t.Fatalf("%s: stderr lacks tag_immutable:\n%s", what, stderr)
		}
	}
	_, stderr, err := runWith(t, o, crane, "push", "--insecure", second, ref)
	refused(t, "crane push of another image to v1", stderr, err)
	if !strings.Contains(stderr, firstDigest.String()) {
		t.Errorf("the refusal does not name the digest v1 holds (%s):\n%s", firstDigest, stderr)
	}

	creds := p.clientID + ":" + p.secret
	so := cmdOpts{env: []string{"REGISTRY_AUTH_FILE=" + filepath.Join(t.TempDir(), "auth.json")}}
	_, stderr, err = runWith(t, so, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:"+second+":v1", "docker://"+ref)
	refused(t, "skopeo copy to v1", stderr, err)

	work := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.json")
	oo := cmdOpts{dir: work, stdin: p.secret}
	mustRunWith(t, oo, oras, "login", "--plain-http", "--registry-config", cfg, "-u", p.clientID, "--password-stdin", s.addr)
	oo.stdin = ""
	if err := os.WriteFile(filepath.Join(work, "f.txt"), []byte("artifact"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runWith(t, oo, oras, "push", "--plain-http", "--registry-config", cfg, ref, "f.txt:text/plain")
	refused(t, "oras push to v1", stderr, err)

	_, stderr, err = runWith(t, o, crane, "delete", "--insecure", ref)
	refused(t, "crane delete v1", stderr, err)
	_, stderr, err = runWith(t, oo, oras, "manifest", "delete", "--plain-http", "--registry-config", cfg, "--force", ref)
	refused(t, "oras manifest delete v1", stderr, err)

	if got := strings.TrimSpace(mustRunWith(t, o, crane, "digest", "--insecure", ref)); got != firstDigest.String() {
		t.Fatalf("v1 holds %s after the refusals, want %s", got, firstDigest)
	}
	// Outside the pattern, tags move as always.
	mustRunWith(t, o, crane, "push", "--insecure", first, s.addr+"/team/app:latest")
	mustRunWith(t, o, crane, "push", "--insecure", second, s.addr+"/team/app:latest")

	// Once an owner removes the rule, v1 moves.
	asAdmin(t, s, "immutable", "remove", "team/*", "--tags", "v*")
	mustRunWith(t, o, crane, "push", "--insecure", second, ref)
}

// TestQuotaAndRetentionThroughTheCLI: a quota refuses the push that would go
// beyond it with quota_exceeded, quota list shows usage, and the retention
// dry run lists exactly what the real run then deletes.
func TestQuotaAndRetentionThroughTheCLI(t *testing.T) {
	needBerth(t)
	crane := tool(t, "crane")
	s := startServer(t, t.TempDir())
	p := newPrincipal(t, s, "ci-web", "push", "team/*")
	env := craneLogin(t, crane, s, p.clientID, p.secret)
	o := cmdOpts{env: env}
	var last string
	for _, tag := range []string{"c1", "c2", "c3", "c4"} {
		last, _ = writeRandomLayout(t, tag)
		mustRunWith(t, o, crane, "push", "--insecure", last, s.addr+"/team/app:"+tag)
	}

	var quotas []struct {
		Scope string `json:"scope"`
		Usage struct {
			Bytes        int64 `json:"bytes"`
			Repositories int   `json:"repositories"`
		} `json:"usage"`
	}
	asAdmin(t, s, "quota", "set", "team/*", "--max-repositories", "1")
	if err := json.Unmarshal([]byte(asAdmin(t, s, "quota", "list", "-o", "json")), &quotas); err != nil || len(quotas) != 1 {
		t.Fatalf("quota list: %v %+v", err, quotas)
	}
	used := quotas[0].Usage.Bytes
	if used <= 0 || quotas[0].Usage.Repositories != 1 {
		t.Fatalf("usage %+v", quotas[0].Usage)
	}
	src, _ := writeRandomLayout(t, "x")
	_, stderr, err := runWith(t, o, crane, "push", "--insecure", src, s.addr+"/team/second:x")
	if err == nil || !strings.Contains(stderr, "quota_exceeded") {
		t.Fatalf("a second repository under --max-repositories 1: %v\n%s", err, stderr)
	}
	// Exactly at the limit is allowed: the same image again adds nothing.
	asAdmin(t, s, "quota", "set", "team/*", "--max-size", jsonInt(used))
	// The bound not given (repositories) kept its value.
	var bounds []struct {
		MaxSize         int64 `json:"max_size"`
		MaxRepositories int   `json:"max_repositories"`
	}
	if err := json.Unmarshal([]byte(asAdmin(t, s, "quota", "list", "-o", "json")), &bounds); err != nil || len(bounds) != 1 ||
		bounds[0].MaxSize != used || bounds[0].MaxRepositories != 1 {
		t.Fatalf("quota after setting --max-size alone: %v %+v", err, bounds)
	}
	mustRunWith(t, o, crane, "push", "--insecure", last, s.addr+"/team/app:again")
	src5, _ := writeRandomLayout(t, "c5")
	_, stderr, err = runWith(t, o, crane, "push", "--insecure", src5, s.addr+"/team/app:c5")
	if err == nil || !strings.Contains(stderr, "quota_exceeded") {
		t.Fatalf("a new image at a full quota: %v\n%s", err, stderr)
	}
	asAdmin(t, s, "quota", "remove", "team/*")

	asAdmin(t, s, "retention", "set", "team/*", "--keep-last", "2")
	type deletion struct {
		Repository string   `json:"repository"`
		Digest     string   `json:"digest"`
		Tags       []string `json:"tags"`
		Size       int64    `json:"size"`
	}
	var dry, real struct {
		DryRun    bool       `json:"dry_run"`
		Deletions []deletion `json:"deletions"`
	}
	if err := json.Unmarshal([]byte(asAdmin(t, s, "retention", "run", "team/*", "--dry-run", "-o", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || len(dry.Deletions) != 2 || dry.Deletions[0].Tags[0] != "c1" || dry.Deletions[1].Tags[0] != "c2" || dry.Deletions[0].Size <= 0 {
		t.Fatalf("dry run %+v", dry)
	}
	if err := json.Unmarshal([]byte(asAdmin(t, s, "retention", "run", "team/*", "-o", "json")), &real); err != nil {
		t.Fatal(err)
	}
	if real.DryRun || len(real.Deletions) != len(dry.Deletions) {
		t.Fatalf("real run %+v, dry run %+v", real, dry)
	}
	for i := range dry.Deletions {
		if real.Deletions[i].Digest != dry.Deletions[i].Digest {
			t.Fatalf("real run deleted %s, the dry run listed %s", real.Deletions[i].Digest, dry.Deletions[i].Digest)
		}
	}
	tags := mustRunWith(t, o, crane, "ls", "--insecure", s.addr+"/team/app")
	if got := strings.Fields(tags); strings.Join(got, ",") != "again,c3,c4" {
		t.Fatalf("tags after retention: %q, want again,c3,c4", got)
	}
	// The audit log names the rule of each deletion.
	audit := asAdmin(t, s, "audit", "--action", "retention.delete", "-o", "json")
	if strings.Count(audit, "--keep-last 2") < 2 {
		t.Fatalf("audit of retention lacks the rule:\n%s", audit)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
