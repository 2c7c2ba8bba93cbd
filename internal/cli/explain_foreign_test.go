package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// TestFromACRDocIsCurrent keeps docs/from-acr.md equal to what the catalogue
// renders; run it with -update after changing foreign.go.
func TestFromACRDocIsCurrent(t *testing.T) {
	want := fromACRMarkdown()
	if *update {
		if err := os.WriteFile(fromACRDocPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(fromACRDocPath)
	if err != nil {
		t.Fatalf("%v; create it with: go test ./internal/cli -run TestFromACRDocIsCurrent -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/from-acr.md differs from the catalogue; regenerate it with: go test ./internal/cli -run TestFromACRDocIsCurrent -update")
	}
	doc := string(want)
	for _, f := range berth.ForeignErrors {
		if !strings.Contains(doc, "\n### "+f.ID+"\n") {
			t.Errorf("docs/from-acr.md has no section for %s", f.ID)
		}
	}
	for _, s := range berth.FromACR {
		if !strings.Contains(doc, "\n### "+s.Title+"\n") {
			t.Errorf("docs/from-acr.md has no step %q", s.Title)
		}
		for _, line := range s.Berth {
			if !strings.Contains(doc, line) {
				t.Errorf("docs/from-acr.md lacks %q", line)
			}
		}
	}
}

// TestExplainForeign: berth explain finds every entry of the catalogue by its
// code and by its message pasted as the other tool printed it, quoted as one
// argument or not.
func TestExplainForeign(t *testing.T) {
	for _, f := range berth.ForeignErrors {
		pasted := "Error response from daemon: " + f.Message
		forms := [][]string{{f.ID}, {strings.ToLower(f.ID)}, {pasted}}
		if !strings.Contains(pasted, " -") {
			forms = append(forms, strings.Fields(pasted)) // unquoted, as one pastes into a shell
		}
		for _, args := range forms {
			code, stdout, stderr := runCLI(t, nil, append([]string{"explain"}, args...)...)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, f.ID+" ("+f.System+")\n") {
				t.Errorf("explain %q: exit %d, stderr %q, stdout %.80q", strings.Join(args, " "), code, stderr, stdout)
				continue
			}
			for _, want := range append(append([]string{f.Meaning, f.InBerth}, f.Causes...), f.Fixes...) {
				if !strings.Contains(stdout, want) {
					t.Errorf("explain %s does not show %q", f.ID, want)
				}
			}
			for _, c := range f.Berth {
				if !strings.Contains(stdout, string(c)) {
					t.Errorf("explain %s does not name berth's %s", f.ID, c)
				}
			}
		}
		code, stdout, _ := runCLI(t, nil, "explain", "-o", "json", f.Message)
		var got foreignJSON
		if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.ID != f.ID || got.System != f.System || len(got.Causes) != len(f.Causes) {
			t.Errorf("explain -o json %s: exit %d, %v: %s", f.ID, code, err, stdout)
		}
	}
	// A berth code is berth's, even where a message would match too.
	if code, stdout, _ := runCLI(t, nil, "explain", "too_many_attempts"); code != 0 || !strings.HasPrefix(stdout, "too_many_attempts ") {
		t.Errorf("explain too_many_attempts: exit %d, %.60q", code, stdout)
	}
}

func TestExplainSearch(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "explain", "--search", "RATE limit")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "toomanyrequests") {
		t.Fatalf("explain --search 'RATE limit': exit %d, stderr %q:\n%s", code, stderr, stdout)
	}
	code, stdout, _ = runCLI(t, nil, "explain", "--search", "secret expired")
	if code != 0 || !strings.Contains(stdout, "  secret_expired ") || !strings.Contains(stdout, "AADSTS7000222") {
		t.Errorf("explain --search 'secret expired': exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, nil, "explain", "-o", "json", "--search", "aadsts70021")
	var out struct {
		Codes   []codeJSON
		Foreign []foreignJSON
	}
	if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil || len(out.Foreign) == 0 || out.Foreign[0].ID != "AADSTS70021" || out.Codes == nil {
		t.Errorf("explain -o json --search aadsts70021: exit %d, %v: %s", code, err, stdout)
	}
	if code, _, stderr := runCLI(t, nil, "explain", "--search", "zebra quagga"); code == 0 || !strings.Contains(stderr, "[not_found]") {
		t.Errorf("a search that finds nothing: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "explain", "--search", "secret", "secret_expired"); code == 0 || !strings.Contains(stderr, "[invalid]") {
		t.Errorf("--search with a code: exit %d, stderr %q", code, stderr)
	}
}
