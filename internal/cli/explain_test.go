package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

var update = flag.Bool("update", false, "rewrite docs/errors.md from the code table")

// TestErrorsDocIsCurrent keeps docs/errors.md equal to what the code table
// renders; run it with -update after changing the table.
func TestErrorsDocIsCurrent(t *testing.T) {
	want := errorsMarkdown()
	if *update {
		if err := os.WriteFile(errorsDocPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(errorsDocPath)
	if err != nil {
		t.Fatalf("%v; create it with: go test ./internal/cli -run TestErrorsDocIsCurrent -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/errors.md differs from the code table; regenerate it with: go test ./internal/cli -run TestErrorsDocIsCurrent -update")
	}
	doc := string(want)
	for _, info := range berth.Codes {
		if !strings.Contains(doc, "\n### "+string(info.Code)+"\n") {
			t.Errorf("docs/errors.md has no section for %s", info.Code)
		}
		for _, s := range append(slices.Clone(info.Causes), info.Fixes...) {
			if !strings.Contains(doc, s) {
				t.Errorf("docs/errors.md lacks %q of %s", s, info.Code)
			}
		}
	}
	for _, g := range berth.CodeGroups {
		if !strings.Contains(doc, "\n## "+groupTitle(g)+"\n") {
			t.Errorf("docs/errors.md has no section for the group %q", g)
		}
	}
}

func TestExplainCode(t *testing.T) {
	for _, arg := range []string{"secret_expired", "SECRET-EXPIRED", " secret_expired "} {
		code, stdout, stderr := runCLI(t, nil, "explain", arg)
		if code != 0 || stderr != "" {
			t.Fatalf("explain %q: exit %d, stderr %q", arg, code, stderr)
		}
		info := berth.LookupCode(berth.CodeSecretExpired)
		for _, want := range append([]string{"secret_expired", "401 Unauthorized", "UNAUTHORIZED", info.Summary, "berth secret add"}, append(info.Causes, info.Fixes...)...) {
			if !strings.Contains(stdout, want) {
				t.Errorf("explain %q does not show %q:\n%s", arg, want, stdout)
			}
		}
	}
	// Every code explains itself without error.
	for _, info := range berth.Codes {
		if code, stdout, stderr := runCLI(t, nil, "explain", string(info.Code)); code != 0 || !strings.HasPrefix(stdout, string(info.Code)+" ") {
			t.Errorf("explain %s: exit %d, stdout %q, stderr %q", info.Code, code, stdout, stderr)
		}
	}
}

func TestExplainList(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "explain")
	if code != 0 || stderr != "" {
		t.Fatalf("explain: exit %d, stderr %q", code, stderr)
	}
	for _, info := range berth.Codes {
		if !strings.Contains(stdout, "  "+string(info.Code)+" ") || !strings.Contains(stdout, info.Summary) {
			t.Errorf("the list lacks %s or its summary", info.Code)
		}
	}
	for _, g := range berth.CodeGroups {
		if !strings.Contains(stdout, groupTitle(g)+":\n") {
			t.Errorf("the list lacks the group %q", g)
		}
	}
}

func TestExplainJSON(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "explain", "-o", "json", "role_missing")
	if code != 0 {
		t.Fatalf("explain -o json role_missing: exit %d", code)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(stdout), &one); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	for _, k := range []string{"code", "status", "oci", "summary", "causes", "fixes"} {
		if _, ok := one[k]; !ok {
			t.Errorf("-o json lacks %q: %s", k, stdout)
		}
	}
	var got codeJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	info := berth.LookupCode(berth.CodeRoleMissing)
	if got.Code != info.Code || got.Status != 403 || got.OCI != "DENIED" || got.Summary != info.Summary ||
		!slices.Equal(got.Causes, info.Causes) || !slices.Equal(got.Fixes, info.Fixes) {
		t.Errorf("-o json = %+v, want %+v", got, info)
	}

	code, stdout, _ = runCLI(t, nil, "explain", "-o", "json")
	var all []codeJSON
	if err := json.Unmarshal([]byte(stdout), &all); code != 0 || err != nil {
		t.Fatalf("explain -o json: exit %d, %v: %s", code, err, stdout)
	}
	if len(all) != len(berth.Codes) {
		t.Fatalf("explain -o json lists %d codes, want %d", len(all), len(berth.Codes))
	}
	for i, info := range berth.Codes {
		if all[i].Code != info.Code || len(all[i].Causes) == 0 || len(all[i].Fixes) == 0 {
			t.Errorf("entry %d = %+v, want %s with causes and fixes", i, all[i], info.Code)
		}
	}
}

func TestExplainUnknownCode(t *testing.T) {
	tests := []struct {
		arg  string
		near []string // codes the message must suggest
	}{
		{"secret_expird", []string{"secret_expired"}},
		{"secret", []string{"secret_invalid", "secret_expired", "secret_revoked"}},
		{"role-mising", []string{"role_missing"}},
		{"UNAUTHORIZED", []string{"credentials_missing", "secret_expired", "connection_unknown"}},
		{"zzzzzzzzzzzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, "explain", tt.arg)
			if code == 0 || stdout != "" {
				t.Fatalf("explain %q: exit %d, stdout %q", tt.arg, code, stdout)
			}
			if !strings.Contains(stderr, "[invalid]") || !strings.Contains(stderr, strconv.Quote(tt.arg)) {
				t.Errorf("stderr %q: want an invalid error naming %q", stderr, tt.arg)
			}
			if !strings.Contains(stderr, "berth explain, with no argument, lists every code") {
				t.Errorf("stderr %q: no hint to list every code", stderr)
			}
			for _, n := range tt.near {
				if !strings.Contains(stderr, n) {
					t.Errorf("stderr %q does not suggest %s", stderr, n)
				}
			}
			if tt.near == nil && strings.Contains(stderr, "nearest") {
				t.Errorf("stderr %q suggests codes for nonsense", stderr)
			}
		})
	}

	code, stdout, _ := runCLI(t, nil, "explain", "-o", "json", "secret_expird")
	var out struct {
		Error struct{ Code, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(stdout), &out); code == 0 || err != nil {
		t.Fatalf("explain -o json secret_expird: exit %d, %v: %s", code, err, stdout)
	}
	if out.Error.Code != string(berth.CodeInvalid) || !strings.Contains(out.Error.Message, "secret_expired") ||
		!strings.HasPrefix(out.Error.Hint, "berth explain secret_expired") {
		t.Errorf("-o json error = %+v", out.Error)
	}

	if code, _, stderr := runCLI(t, nil, "explain", "a", "b"); code == 0 || stderr == "" {
		t.Errorf("explain with two arguments: exit %d, stderr %q", code, stderr)
	}
}
