package berth_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// declaredCodes returns the value of every constant of type Code declared in
// the root package's non-test files, by constant name. Reading the source,
// rather than a list kept in this test, makes a code added without a table
// entry fail TestCodesTableIsComplete.
func declaredCodes(t *testing.T) map[string]berth.Code {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	codes := map[string]berth.Code{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						t.Fatalf("%s: Code constant %s has no value of its own", fset.Position(n.Pos()), n.Name)
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: Code constant %s is not a string literal", fset.Position(n.Pos()), n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[n.Name] = berth.Code(v)
				}
			}
		}
	}
	// error.go holds them; finding none means the parse looked in the wrong place.
	if len(codes) < 30 {
		t.Fatalf("found only %d Code constants", len(codes))
	}
	return codes
}

func TestCodesTableIsComplete(t *testing.T) {
	declared := declaredCodes(t)
	inTable := map[berth.Code]int{}
	for _, info := range berth.Codes {
		inTable[info.Code]++
	}
	byValue := map[berth.Code]string{}
	for name, c := range declared {
		if other, dup := byValue[c]; dup {
			t.Errorf("constants %s and %s both have the value %q", name, other, c)
		}
		byValue[c] = name
		switch n := inTable[c]; n {
		case 1:
		case 0:
			t.Errorf("%s (%q) has no entry in the Codes table", name, c)
		default:
			t.Errorf("%s (%q) has %d entries in the Codes table", name, c, n)
		}
	}
	for c := range inTable {
		if _, ok := byValue[c]; !ok {
			t.Errorf("the Codes table describes %q, which no Code constant declares", c)
		}
	}
}

// ociCodes are the error codes of the distribution spec, and UNKNOWN, which
// distribution answers for an internal error.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
var ociCodes = map[string]bool{
	"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true,
	"DIGEST_INVALID": true, "MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true,
	"MANIFEST_UNKNOWN": true, "NAME_INVALID": true, "NAME_UNKNOWN": true,
	"SIZE_INVALID": true, "UNAUTHORIZED": true, "DENIED": true, "UNSUPPORTED": true,
	"TOOMANYREQUESTS": true, "UNKNOWN": true,
}

func TestCodesTableEntries(t *testing.T) {
	for _, info := range berth.Codes {
		if info.Code == "" {
			t.Errorf("an entry has no code: %+v", info)
		}
		if info.Status < 400 || info.Status > 599 || http.StatusText(info.Status) == "" {
			t.Errorf("%s: status %d is not an HTTP error status", info.Code, info.Status)
		}
		if !ociCodes[info.OCI] {
			t.Errorf("%s: OCI code %q is not a distribution-spec error code", info.Code, info.OCI)
		}
		if strings.TrimSpace(info.Summary) == "" {
			t.Errorf("%s: no summary", info.Code)
		}
	}
}

// TestCodesAreExplained checks what berth explain and docs/errors.md show:
// every code belongs to a listed group and has concrete causes and fixes.
func TestCodesAreExplained(t *testing.T) {
	groups := map[berth.CodeGroup]int{}
	for _, g := range berth.CodeGroups {
		groups[g] = 0
	}
	for _, info := range berth.Codes {
		if _, ok := groups[info.Group]; !ok {
			t.Errorf("%s: group %q is not in CodeGroups", info.Code, info.Group)
		}
		groups[info.Group]++
		if len(info.Causes) == 0 {
			t.Errorf("%s: no causes", info.Code)
		}
		if len(info.Fixes) == 0 {
			t.Errorf("%s: no fixes", info.Code)
		}
		for _, s := range append(append([]string{}, info.Causes...), info.Fixes...) {
			if strings.TrimSpace(s) == "" || s != strings.TrimSpace(s) || !strings.HasSuffix(s, ".") {
				t.Errorf("%s: %q is not a sentence", info.Code, s)
			}
			if strings.Count(s, "`")%2 != 0 {
				t.Errorf("%s: %q has an unpaired backquote", info.Code, s)
			}
		}
	}
	for g, n := range groups {
		if n == 0 {
			t.Errorf("group %q holds no code", g)
		}
	}
	// The codes a client meets most often name the command that fixes them.
	for code, command := range map[berth.Code]string{
		berth.CodeSecretExpired:         "berth secret add ",
		berth.CodeSecretRevoked:         "berth secret add ",
		berth.CodeSecretIDSent:          "berth secret add ",
		berth.CodePrincipalDisabled:     "berth principal enable ",
		berth.CodeRoleMissing:           "berth role assign --principal ",
		berth.CodeCredentialsMissing:    "docker login HOST -u CLIENT_ID --password-stdin",
		berth.CodePipelineNotAuthorized: "berth connection authorize ",
		berth.CodePipelineUnknown:       "berth pipeline create ",
	} {
		if fixes := strings.Join(berth.LookupCode(code).Fixes, "\n"); !strings.Contains(fixes, command) {
			t.Errorf("%s: no fix runs %q", code, command)
		}
	}
}

// TestDesignReasonCodes pins the reason codes DESIGN.md promises: codes may be
// added, never renamed.
func TestDesignReasonCodes(t *testing.T) {
	promised := []berth.Code{
		"credentials_missing", "client_unknown", "secret_invalid", "secret_id_sent",
		"secret_expired", "secret_revoked", "principal_disabled", "token_expired",
		"token_invalid", "refresh_token_invalid", "assertion_invalid", "assertion_expired",
		"pipeline_unknown", "audience_mismatch", "too_many_attempts", "role_missing",
		"scope_not_granted", "pipeline_not_authorized", "connection_unknown",
		"connection_disabled",
		"internal", "invalid", "not_found", "conflict",
	}
	for _, c := range promised {
		if got := berth.LookupCode(c); got.Code != c {
			t.Errorf("LookupCode(%q) = %q: the code is missing from the table", c, got.Code)
		}
	}
}

func TestLookupCode(t *testing.T) {
	for _, info := range berth.Codes {
		if got := berth.LookupCode(info.Code); !reflect.DeepEqual(got, info) {
			t.Errorf("LookupCode(%q) = %+v, want %+v", info.Code, got, info)
		}
	}
	internal := berth.LookupCode(berth.CodeInternal)
	if internal.Code != berth.CodeInternal || internal.Status != http.StatusInternalServerError {
		t.Fatalf("LookupCode(internal) = %+v", internal)
	}
	for _, c := range []berth.Code{"no_such_code", "", "BLOB_UNKNOWN"} {
		if got := berth.LookupCode(c); !reflect.DeepEqual(got, internal) {
			t.Errorf("LookupCode(%q) = %+v, want the internal entry", c, got)
		}
	}
}

func TestErrorString(t *testing.T) {
	e := berth.Errorf(berth.CodeSecretExpired, "secret %s expired", "brt_3kX")
	plain := e.Error()
	if !strings.HasPrefix(plain, string(berth.CodeSecretExpired)+": ") {
		t.Errorf("Error() = %q does not start with its code", plain)
	}
	if !strings.Contains(plain, "secret brt_3kX expired") {
		t.Errorf("Error() = %q does not hold the formatted message", plain)
	}
	hint := "berth secret add ci-web --expires-in 90d"
	withHint := e.WithHint("berth secret add %s --expires-in %s", "ci-web", "90d")
	if withHint != e {
		t.Error("WithHint returned another *Error; it is for chaining")
	}
	if e.Hint != hint {
		t.Errorf("Hint = %q, want %q", e.Hint, hint)
	}
	if s := e.Error(); !strings.Contains(s, hint) || !strings.HasPrefix(s, plain) {
		t.Errorf("Error() with a hint = %q, want %q followed by the hint %q", s, plain, hint)
	}
	if e.WithDetail("digest", "sha256:x") != e || e.Detail["digest"] != "sha256:x" {
		t.Errorf("WithDetail: Detail = %v", e.Detail)
	}
}

func TestErrorCodeThroughWrapping(t *testing.T) {
	base := berth.Errorf(berth.CodeBlobUnknown, "blob is not stored")
	wrapped := fmt.Errorf("open blob: %w", base)
	twice := fmt.Errorf("serve: %w", wrapped)
	joined := errors.Join(errors.New("first"), twice)
	// The first *Error in the chain decides, even when it wraps another.
	outer := fmt.Errorf("outer: %w", &twoErrors{berth.Errorf(berth.CodeConflict, "changed"), base})

	tests := []struct {
		name string
		err  error
		code berth.Code
		as   *berth.Error
	}{
		{"nil", nil, "", nil},
		{"plain", errors.New("disk full"), berth.CodeInternal, nil},
		{"wrapped plain", fmt.Errorf("x: %w", errors.New("disk full")), berth.CodeInternal, nil},
		{"*Error", base, berth.CodeBlobUnknown, base},
		{"wrapped once", wrapped, berth.CodeBlobUnknown, base},
		{"wrapped twice", twice, berth.CodeBlobUnknown, base},
		{"joined", joined, berth.CodeBlobUnknown, base},
		{"formatted with %v", fmt.Errorf("x: %v", base), berth.CodeInternal, nil},
		{"first of two", outer, berth.CodeConflict, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := berth.ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			got := berth.AsError(tt.err)
			switch {
			case tt.as != nil && got != tt.as:
				t.Errorf("AsError = %v, want the *Error %p", got, tt.as)
			case tt.code == berth.CodeInternal && got != nil:
				t.Errorf("AsError = %v, want nil", got)
			case tt.code != "" && tt.code != berth.CodeInternal && (got == nil || got.Code != tt.code):
				t.Errorf("AsError = %v, want an *Error with code %q", got, tt.code)
			}
			if tt.code != "" && !berth.IsCode(tt.err, tt.code) {
				t.Errorf("IsCode(err, %q) = false", tt.code)
			}
			if berth.IsCode(tt.err, berth.CodeNameInvalid) {
				t.Error("IsCode(err, name_invalid) = true")
			}
		})
	}
	if berth.IsCode(nil, "") || berth.IsCode(nil, berth.CodeInternal) {
		t.Error("a nil error carries a code")
	}
}

// twoErrors is an error that is not an *Error but wraps one after another.
type twoErrors struct{ first, second error }

func (w *twoErrors) Error() string   { return w.first.Error() + "; " + w.second.Error() }
func (w *twoErrors) Unwrap() []error { return []error{w.first, w.second} }

// TestExplainURL: the link to a code's page is under the configured public
// URL only; without one there is no link at all.
func TestExplainURL(t *testing.T) {
	for _, tc := range []struct {
		base string
		code berth.Code
		want string
	}{
		{"https://reg.example", berth.CodeRoleMissing, "https://reg.example/errors/role_missing"},
		{"https://reg.example/", berth.CodeSecretExpired, "https://reg.example/errors/secret_expired"},
		{"https://reg.example/berth", berth.CodeRoleMissing, "https://reg.example/berth/errors/role_missing"},
		{"", berth.CodeRoleMissing, ""},
		{"https://reg.example", "", ""},
	} {
		if got := berth.ExplainURL(tc.base, tc.code); got != tc.want {
			t.Errorf("ExplainURL(%q, %q) = %q, want %q", tc.base, tc.code, got, tc.want)
		}
	}
	e := berth.Errorf(berth.CodeRoleMissing, "no")
	if d := e.Details("r1", ""); d[berth.DetailExplain] != nil {
		t.Errorf("Details without a base: %v", d)
	}
	if d := e.Details("r1", "https://reg.example"); d[berth.DetailExplain] != "https://reg.example/errors/role_missing" || d["reason"] != "role_missing" {
		t.Errorf("Details with a base: %v", d)
	}
}
