package scan

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// findingsOf scans a directory holding one credential of every kind.
func findingsOf(t *testing.T) (Report, map[Kind][]string) {
	t.Helper()
	dir := t.TempDir()
	pos := positives(t)
	for k, vs := range pos {
		for i, v := range vs {
			name := filepath.Join(dir, string(k), "f"+string(rune('a'+i))+" x.txt")
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(embed(k, v)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := ScanFiles(t.Context(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, vs := range pos {
		n += len(vs)
	}
	if len(res.Findings) != n {
		t.Fatalf("%d findings, want %d", len(res.Findings), n)
	}
	return Report{Findings: res.Findings, Skipped: res.Skipped, Scanned: res.Stats}, pos
}

func TestOutputsNeverHoldASecret(t *testing.T) {
	r, pos := findingsOf(t)
	var text, js, sarif bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteSARIF(&sarif, r, "test"); err != nil {
		t.Fatal(err)
	}
	for _, vs := range pos {
		for _, v := range vs {
			// The secret part of a private key is its body, after the BEGIN line.
			secretPart := v[len(v)/2:]
			for name, out := range map[string]string{"text": text.String(), "json": js.String(), "sarif": sarif.String()} {
				if strings.Contains(out, secretPart) {
					t.Errorf("%s output holds a secret (%.12s…)", name, v)
				}
			}
		}
	}
	if got := strings.Count(text.String(), "\n"); got != len(r.Findings) {
		t.Errorf("text: %d lines for %d findings:\n%s", got, len(r.Findings), text.String())
	}
}

// The SARIF 2.1.0 structure, written here independently of the package's
// own types, with the fields code-scanning tools require.
type sarifDoc struct {
	Schema  *string `json:"$schema"`
	Version *string `json:"version"`
	Runs    []struct {
		Tool *struct {
			Driver *struct {
				Name           *string `json:"name"`
				InformationURI string  `json:"informationUri"`
				Rules          []struct {
					ID               *string `json:"id"`
					ShortDescription *struct {
						Text *string `json:"text"`
					} `json:"shortDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    *string `json:"ruleId"`
			RuleIndex *int    `json:"ruleIndex"`
			Level     *string `json:"level"`
			Message   *struct {
				Text *string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation *struct {
						URI *string `json:"uri"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine   *int `json:"startLine"`
						StartColumn *int `json:"startColumn"`
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
		} `json:"results"`
	} `json:"runs"`
}

func TestSARIFStructure(t *testing.T) {
	r, _ := findingsOf(t)
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, r, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	var doc sarifDoc
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version == nil || *doc.Version != "2.1.0" || doc.Schema == nil || !strings.Contains(*doc.Schema, "sarif") {
		t.Fatalf("version %v, $schema %v", doc.Version, doc.Schema)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].Tool == nil || doc.Runs[0].Tool.Driver == nil || doc.Runs[0].Tool.Driver.Name == nil {
		t.Fatal("runs[0].tool.driver.name is missing")
	}
	run := doc.Runs[0]
	rules := map[string]int{}
	for i, rl := range run.Tool.Driver.Rules {
		if rl.ID == nil || rl.ShortDescription == nil || rl.ShortDescription.Text == nil {
			t.Fatalf("rule %d lacks id or shortDescription.text", i)
		}
		rules[*rl.ID] = i
	}
	if len(rules) != len(Rules) {
		t.Errorf("%d rules, want one per kind (%d)", len(rules), len(Rules))
	}
	if len(run.Results) != len(r.Findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(r.Findings))
	}
	for i, res := range run.Results {
		if res.RuleID == nil || res.Level == nil || res.Message == nil || res.Message.Text == nil || len(res.Locations) != 1 {
			t.Fatalf("result %d lacks ruleId, level, message.text or its location", i)
		}
		idx, ok := rules[*res.RuleID]
		if !ok || res.RuleIndex == nil || *res.RuleIndex != idx {
			t.Errorf("result %d: ruleId %s, ruleIndex %v, not a rule of the driver", i, *res.RuleID, res.RuleIndex)
		}
		switch *res.Level {
		case "none", "note", "warning", "error":
		default:
			t.Errorf("result %d: level %q", i, *res.Level)
		}
		pl := res.Locations[0].PhysicalLocation
		if pl == nil || pl.ArtifactLocation == nil || pl.ArtifactLocation.URI == nil || pl.Region == nil ||
			pl.Region.StartLine == nil || *pl.Region.StartLine < 1 || pl.Region.StartColumn == nil || *pl.Region.StartColumn < 1 {
			t.Fatalf("result %d: incomplete physicalLocation", i)
		}
		if uri := *pl.ArtifactLocation.URI; !strings.HasPrefix(uri, "file:///") || strings.Contains(uri, " ") {
			t.Errorf("result %d: uri %q is not an escaped file URI", i, uri)
		}
		if res.PartialFingerprints[sarifFingerprintKey] != r.Findings[i].Fingerprint {
			t.Errorf("result %d: partialFingerprints %v", i, res.PartialFingerprints)
		}
	}
	if fileURI("deploy/a b.yaml") != "deploy/a%20b.yaml" || fileURI("./x.txt") != "x.txt" {
		t.Errorf("relative uris: %q %q", fileURI("deploy/a b.yaml"), fileURI("./x.txt"))
	}
}

func TestBaseline(t *testing.T) {
	r, _ := findingsOf(t)
	dir := t.TempDir()
	for _, format := range []string{"json", "sarif"} {
		var buf bytes.Buffer
		old := Report{Findings: r.Findings[:3]}
		if format == "json" {
			if err := WriteJSON(&buf, old); err != nil {
				t.Fatal(err)
			}
		} else if err := WriteSARIF(&buf, old, "test"); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "baseline."+format)
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		bl, err := LoadBaseline(path)
		if err != nil {
			t.Fatal(err)
		}
		kept, suppressed := bl.Filter(r.Findings)
		if suppressed != 3 || len(kept) != len(r.Findings)-3 {
			t.Errorf("%s baseline: kept %d, suppressed %d", format, len(kept), suppressed)
		}
		for _, f := range kept {
			if bl[f.Fingerprint] {
				t.Errorf("%s baseline: kept an accepted finding", format)
			}
		}
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"x": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBaseline(bad); err == nil {
		t.Error("a JSON file that is no report is accepted as a baseline")
	}
}
