package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Revocation is what became of a berth client secret found and revoked.
type Revocation struct {
	Fingerprint string `json:"fingerprint"`
	Excerpt     string `json:"excerpt"`
	// Status is revoked, already_revoked, not_found (no berth server knows
	// the value) or failed (Error says why).
	Status               string `json:"status"`
	Principal            string `json:"principal,omitempty"`
	SecretID             string `json:"secret_id,omitempty"`
	RefreshTokensRevoked int    `json:"refresh_tokens_revoked,omitempty"`
	Error                string `json:"error,omitempty"`
}

// Revocation statuses.
const (
	RevocationRevoked        = "revoked"
	RevocationAlreadyRevoked = "already_revoked"
	RevocationNotFound       = "not_found"
	RevocationFailed         = "failed"
)

// Report is the JSON output of berth scan, and what --baseline reads back.
type Report struct {
	Findings []Finding `json:"findings"`
	// Suppressed counts the findings a baseline accepted.
	Suppressed  int          `json:"suppressed"`
	Skipped     []Skipped    `json:"skipped"`
	Scanned     Stats        `json:"scanned"`
	Revocations []Revocation `json:"revocations,omitempty"`
}

// WriteText writes one line per finding (file:line:column kind excerpt, and
// the commit for history) and one per revocation.
func WriteText(w io.Writer, r Report) error {
	for _, f := range r.Findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	for _, v := range r.Revocations {
		var err error
		switch v.Status {
		case RevocationRevoked:
			_, err = fmt.Fprintf(w, "revoked %s: secret %s of principal %s; %d refresh token(s) revoked\n", v.Excerpt, v.SecretID, v.Principal, v.RefreshTokensRevoked)
		case RevocationAlreadyRevoked:
			_, err = fmt.Fprintf(w, "already revoked %s: secret %s of principal %s\n", v.Excerpt, v.SecretID, v.Principal)
		case RevocationNotFound:
			_, err = fmt.Fprintf(w, "not revoked %s: the server knows no such secret\n", v.Excerpt)
		default:
			_, err = fmt.Fprintf(w, "not revoked %s: %s\n", v.Excerpt, v.Error)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes r as one indented JSON document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Baseline is a set of accepted fingerprints.
type Baseline map[string]bool

// LoadBaseline reads the fingerprints of a previous JSON report (berth scan
// -o json), or of a SARIF log berth scan wrote (its partialFingerprints).
func LoadBaseline(path string) (Baseline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	var doc struct {
		Findings []struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"findings"`
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("baseline %s is not the JSON output of berth scan: %w", path, err)
	}
	if doc.Findings == nil && doc.Runs == nil {
		return nil, fmt.Errorf("baseline %s holds neither findings (berth scan -o json) nor runs (berth scan -o sarif)", path)
	}
	bl := Baseline{}
	for _, f := range doc.Findings {
		if f.Fingerprint != "" {
			bl[f.Fingerprint] = true
		}
	}
	for _, run := range doc.Runs {
		for _, res := range run.Results {
			if fp := res.PartialFingerprints[sarifFingerprintKey]; fp != "" {
				bl[fp] = true
			}
		}
	}
	return bl, nil
}

// Filter returns the findings whose fingerprint b does not hold, and how
// many it held.
func (b Baseline) Filter(fs []Finding) ([]Finding, int) {
	out := slices.DeleteFunc(slices.Clone(fs), func(f Finding) bool { return b[f.Fingerprint] })
	return out, len(fs) - len(out)
}

// SARIF 2.1.0 (OASIS, https://docs.oasis-open.org/sarif/sarif/v2.1.0/),
// the subset code-scanning tools read.
const (
	SARIFVersion        = "2.1.0"
	SARIFSchema         = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifFingerprintKey = "berthScan/v1"
)

// SARIFLog is a SARIF log (§3.13).
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []SARIFRun `json:"runs"`
}

// SARIFRun is a run (§3.14).
type SARIFRun struct {
	Tool       SARIFTool     `json:"tool"`
	Results    []SARIFResult `json:"results"`
	ColumnKind string        `json:"columnKind"`
}

// SARIFTool is a tool (§3.18) and its driver (§3.19).
type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

// SARIFDriver is the tool component that ran (§3.19).
type SARIFDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []SARIFRule `json:"rules"`
}

// SARIFRule is a reportingDescriptor (§3.49).
type SARIFRule struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name"`
	ShortDescription     SARIFMessage    `json:"shortDescription"`
	FullDescription      SARIFMessage    `json:"fullDescription"`
	Help                 SARIFMessage    `json:"help"`
	DefaultConfiguration SARIFRuleConfig `json:"defaultConfiguration"`
	Properties           map[string]any  `json:"properties,omitempty"`
}

// SARIFRuleConfig is a reportingConfiguration (§3.50).
type SARIFRuleConfig struct {
	Level string `json:"level"`
}

// SARIFMessage is a message (§3.11), plain text only.
type SARIFMessage struct {
	Text string `json:"text"`
}

// SARIFResult is a result (§3.27).
type SARIFResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             SARIFMessage      `json:"message"`
	Locations           []SARIFLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

// SARIFLocation is a location (§3.28).
type SARIFLocation struct {
	PhysicalLocation SARIFPhysicalLocation `json:"physicalLocation"`
}

// SARIFPhysicalLocation is a physicalLocation (§3.29).
type SARIFPhysicalLocation struct {
	ArtifactLocation SARIFArtifactLocation `json:"artifactLocation"`
	Region           SARIFRegion           `json:"region"`
}

// SARIFArtifactLocation is an artifactLocation (§3.4).
type SARIFArtifactLocation struct {
	URI string `json:"uri"`
}

// SARIFRegion is a region (§3.30), 1-based.
type SARIFRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

// SARIF returns r's findings as a SARIF log, one rule per Kind. Columns
// count Unicode code points (columnKind unicodeCodePoints); a finding in
// history carries its commit in the result's properties.
func SARIF(r Report, version string) SARIFLog {
	rules := make([]SARIFRule, len(Rules))
	for i, rl := range Rules {
		rules[i] = SARIFRule{ID: string(rl.Kind), Name: rl.Name,
			ShortDescription:     SARIFMessage{rl.Description},
			FullDescription:      SARIFMessage{rl.Description},
			Help:                 SARIFMessage{rl.Help},
			DefaultConfiguration: SARIFRuleConfig{Level: "error"},
			Properties:           map[string]any{"tags": []string{"security", "secret"}, "verified": rl.Verified}}
	}
	results := make([]SARIFResult, 0, len(r.Findings))
	for _, f := range r.Findings {
		rl, idx := RuleFor(f.Kind)
		msg := fmt.Sprintf("%s %s found", rl.Name, f.Excerpt)
		var props map[string]any
		if f.Commit != "" {
			msg += " in commit " + short(f.Commit)
			props = map[string]any{"commit": f.Commit, "blob": f.Blob}
			if len(f.Commits) > 0 {
				props["commits"] = f.Commits
			}
		}
		results = append(results, SARIFResult{
			RuleID: string(f.Kind), RuleIndex: idx, Level: "error",
			Message: SARIFMessage{msg + "."},
			Locations: []SARIFLocation{{PhysicalLocation: SARIFPhysicalLocation{
				ArtifactLocation: SARIFArtifactLocation{URI: fileURI(f.File)},
				Region:           SARIFRegion{StartLine: f.Line, StartColumn: f.Column},
			}}},
			PartialFingerprints: map[string]string{sarifFingerprintKey: f.Fingerprint},
			Properties:          props,
		})
	}
	return SARIFLog{Schema: SARIFSchema, Version: SARIFVersion, Runs: []SARIFRun{{
		Tool: SARIFTool{Driver: SARIFDriver{Name: "berth scan", Version: version,
			InformationURI: "https://github.com/berth-dev/berth", Rules: rules}},
		Results:    results,
		ColumnKind: "unicodeCodePoints",
	}}}
}

// WriteSARIF writes r as a SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, r Report, version string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(SARIF(r, version))
}

// fileURI writes a path as a URI reference: relative paths stay relative
// (to the directory scanned, as code-scanning tools expect), with '/'
// separators and escaping.
func fileURI(path string) string {
	p := filepath.ToSlash(path)
	p = strings.TrimPrefix(p, "./")
	u := url.URL{Path: p}
	if filepath.IsAbs(path) {
		u.Scheme = "file"
		if !strings.HasPrefix(p, "/") {
			u.Path = "/" + p // C:/x on Windows
		}
	}
	return u.String()
}
