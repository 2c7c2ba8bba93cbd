package berth_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// TestForeignErrorsAreExplained checks what berth explain and
// docs/from-acr.md show of every catalogue entry.
func TestForeignErrorsAreExplained(t *testing.T) {
	ids := map[string]bool{}
	for _, e := range berth.ForeignErrors {
		if e.ID == "" || ids[strings.ToLower(e.ID)] {
			t.Errorf("entry %q: empty or duplicate id", e.ID)
		}
		ids[strings.ToLower(e.ID)] = true
		// berth explain reads codes leniently (any case, dashes for underscores).
		if asCode := berth.Code(strings.ReplaceAll(strings.ToLower(e.ID), "-", "_")); berth.LookupCode(asCode).Code == asCode {
			t.Errorf("%s: the id is a berth code; berth explain would never show the entry", e.ID)
		}
		if e.System == "" || e.Message == "" || e.Meaning == "" || e.InBerth == "" || len(e.Causes) == 0 || len(e.Fixes) == 0 || len(e.Match) == 0 {
			t.Errorf("%s: an empty field: %+v", e.ID, e)
		}
		for _, m := range e.Match {
			if m != strings.ToLower(strings.Join(strings.Fields(m), " ")) {
				t.Errorf("%s: match fragment %q is not lower case with single spaces", e.ID, m)
			}
		}
		for _, s := range append(append([]string{e.Meaning, e.InBerth}, e.Causes...), e.Fixes...) {
			if s != strings.TrimSpace(s) || !strings.HasSuffix(s, ".") {
				t.Errorf("%s: %q is not a sentence", e.ID, s)
			}
			if strings.Count(s, "`")%2 != 0 {
				t.Errorf("%s: %q has an unpaired backquote", e.ID, s)
			}
		}
		for _, c := range e.Berth {
			if berth.LookupCode(c).Code != c {
				t.Errorf("%s: berth code %q is not in the code table", e.ID, c)
			}
		}
	}
	for _, s := range berth.FromACR {
		if s.Title == "" || len(s.ACR) == 0 || len(s.Berth) == 0 {
			t.Errorf("step %q: an empty field", s.Title)
		}
		for _, id := range s.Errors {
			if !ids[strings.ToLower(id)] {
				t.Errorf("step %q names %q, which is not in the catalogue", s.Title, id)
			}
		}
		for _, line := range append(slices.Clone(s.ACR), s.Berth...) {
			if !strings.HasSuffix(line, ".") || strings.Count(line, "`")%2 != 0 {
				t.Errorf("step %q: %q is not a sentence with paired backquotes", s.Title, line)
			}
		}
	}
	// The entries the issue names, by the code or text people paste.
	for _, want := range []string{"AADSTS7000215", "AADSTS7000222", "AADSTS700016", "AADSTS700024", "AADSTS70021", "AADSTS50173",
		"acr-unauthorized", "registry-unauthorized", "registry-denied", "toomanyrequests", "ecr-token-expired", "insufficient_scope"} {
		if !ids[strings.ToLower(want)] {
			t.Errorf("the catalogue lacks %s", want)
		}
	}
}

// TestMatchForeign: every entry is found by its id (any case) and by its
// message pasted as a client prints it, before any other entry.
func TestMatchForeign(t *testing.T) {
	for _, e := range berth.ForeignErrors {
		for _, q := range []string{e.ID, strings.ToLower(e.ID), "  " + strings.ToUpper(e.ID) + "\n",
			e.Message, "Error response from daemon: Get \"https://example.test/v2/\": " + e.Message + "\n",
			strings.ToUpper(e.Message)} {
			got := berth.MatchForeign(q)
			if len(got) == 0 || got[0].ID != e.ID {
				var names []string
				for _, g := range got {
					names = append(names, g.ID)
				}
				t.Errorf("MatchForeign(%q) = %v, want %s first", q, names, e.ID)
			}
		}
	}
	// A code inside a longer message decides, whatever else the text holds.
	got := berth.MatchForeign("##[error]AzureCLI: ERROR: AADSTS7000222: The provided client secret keys for app 'x' are expired. unauthorized: authentication required")
	if len(got) == 0 || got[0].ID != "AADSTS7000222" {
		t.Errorf("a pasted AADSTS7000222 log line matched %v", got)
	}
	for _, q := range []string{"", "   ", "everything is fine", "secret_expired"} {
		if got := berth.MatchForeign(q); got != nil {
			t.Errorf("MatchForeign(%q) = %v, want nothing", q, got)
		}
	}
}

func TestSearchWords(t *testing.T) {
	e := berth.ForeignErrors[0]
	if !berth.SearchWords(e.Text(), "CLIENT secret") || berth.SearchWords(e.Text(), "client zebra") || berth.SearchWords(e.Text(), " ") {
		t.Error("SearchWords does not require every word, in any case")
	}
}
