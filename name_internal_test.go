package berth

import (
	"regexp"
	"strings"
	"testing"
)

// The distribution-spec grammar as regular expressions: the oracle the
// hand-written validators are held to.
var (
	repositoryNameGrammar = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagGrammar            = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

var nameSeeds = []string{
	"", "a", "team/app", "a__b/c-d.e", "a---b", "a___b", "a._b", "a.", ".a", "a/", "/a", "a//b",
	"Team/App", "a_b_c", "a__", "__a", "a-", "-a", "a.b.c/d__e/f---g", "x/y/z", "v1.0", "latest",
	"-x", ".x", "_x", "A", "a b", "a:b", "a@b", strings.Repeat("a", 128), strings.Repeat("a", 129),
	strings.Repeat("a/", 130), "ä", "a\x00",
}

func TestNameValidatorsFollowTheGrammar(t *testing.T) {
	for _, s := range nameSeeds {
		checkNameGrammar(t, s)
	}
}

func FuzzNameGrammar(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(checkNameGrammar)
}

func checkNameGrammar(t *testing.T, s string) {
	if got, want := validRepositoryName(s), repositoryNameGrammar.MatchString(s); got != want {
		t.Errorf("validRepositoryName(%q) = %v, the grammar says %v", s, got, want)
	}
	if got, want := validTag(s), tagGrammar.MatchString(s); got != want {
		t.Errorf("validTag(%q) = %v, the grammar says %v", s, got, want)
	}
}

// A refused repository name comes with a valid one close to it, when there
// is one, for the hint; what the grammar takes ("__", runs of dashes) stays.
func TestSuggestRepositoryName(t *testing.T) {
	for in, want := range map[string]string{
		"Team/My App":   "team/my-app",
		"team//app":     "team/app",
		"team/app_":     "team/app",
		"Team/App.-v2":  "team/app-v2",
		"Team/My__App":  "team/my__app",
		"my app--x":     "my-app--x",
		"team/app..old": "team/app-old",
		"/team/app/":    "team/app",
		"a___b":         "a-b",
		"!!!":           "",
		"ÄÖÜ/x":         "x",
	} {
		got, ok := suggestRepositoryName(in)
		if got != want || ok != (want != "") {
			t.Errorf("suggestRepositoryName(%q) = %q, %v; want %q", in, got, ok, want)
		}
		if ok && !validRepositoryName(got) {
			t.Errorf("suggestRepositoryName(%q) = %q, which is not valid", in, got)
		}
	}
	e := AsError(ValidateRepositoryName("Team/App"))
	if e == nil || e.Code != CodeNameInvalid || e.Hint != "name it team/app" {
		t.Errorf("ValidateRepositoryName(Team/App) = %v", e)
	}
}
