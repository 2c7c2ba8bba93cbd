package berth_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestValidatePrincipalName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"ci-web", true},
		{"team.app_1", true},
		{"a-", true},
		{"a..b", true},
		{"admin", true},
		{strings.Repeat("a", 64), true},
		// A UUID without its dashes is not a UUID.
		{"123e4567e89b12d3a456426614174000", true},

		{"", false},
		{strings.Repeat("a", 65), false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"Ci-web", false},
		{"ci-Web", false},
		{"ci web", false},
		{"ci\tweb", false},
		{"ci/web", false},
		{"ci:web", false},
		{"ci@web", false},
		{"ci+web", false},
		{"ci~web", false},
		{"ci,web", false},
		{"ciwéb", false},
		{"ci\x00web", false},
		// Shell metacharacters.
		{"a;b", false},
		{"a$b", false},
		{"a`b", false},
		{"a|b", false},
		{"a&b", false},
		{"a>b", false},
		{"a<b", false},
		{"a*b", false},
		{"a?b", false},
		{"a(b", false},
		{"a'b", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a!b", false},
		{"a#b", false},
		{"$(id)", false},
		// A name shaped like a client id could not be told from one.
		{"123e4567-e89b-12d3-a456-426614174000", false},
	}
	for _, tt := range tests {
		err := berth.ValidatePrincipalName(tt.name)
		want := berth.CodeInvalid
		if tt.ok {
			want = ""
		}
		if got := berth.ErrorCode(err); got != want {
			t.Errorf("ValidatePrincipalName(%q) code = %q, want %q (err: %v)", tt.name, got, want, err)
		}
		if err != nil && berth.AsError(err).Hint == "" {
			t.Errorf("ValidatePrincipalName(%q): no hint", tt.name)
		}
	}
}

// countingReader yields 0, 1, 2, … 255, 0, 1, …: a deterministic random source.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewPrincipal(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	p, err := berth.NewPrincipal(&countingReader{}, "ci-web", berth.PrincipalService, now)
	if err != nil {
		t.Fatal(err)
	}
	// Bytes 0..15 make the id and 16..31 the client id, with the version and
	// variant bits set.
	if p.ID != "00010203-0405-4607-8809-0a0b0c0d0e0f" {
		t.Errorf("ID = %s", p.ID)
	}
	if p.ClientID != "10111213-1415-4617-9819-1a1b1c1d1e1f" {
		t.Errorf("ClientID = %s", p.ClientID)
	}
	if p.Name != "ci-web" || p.Kind != berth.PrincipalService || p.Disabled || !p.Created.Equal(now) {
		t.Errorf("NewPrincipal = %+v", p)
	}

	for range 100 {
		p, err := berth.NewPrincipal(randReader(t), "x", berth.PrincipalUser, now)
		if err != nil {
			t.Fatal(err)
		}
		if !uuidV4.MatchString(p.ID) || !uuidV4.MatchString(p.ClientID) || p.ID == p.ClientID {
			t.Fatalf("ID %s, ClientID %s: want two distinct version 4 UUIDs", p.ID, p.ClientID)
		}
		if got, err := berth.ParseClientID(p.ClientID); err != nil || got != p.ClientID {
			t.Fatalf("ParseClientID(%s) = %q, %v", p.ClientID, got, err)
		}
	}

	_, err = berth.NewPrincipal(&countingReader{}, "Bad Name", berth.PrincipalService, now)
	if got := berth.ErrorCode(err); got != berth.CodeInvalid {
		t.Errorf("NewPrincipal with a bad name: code %q, want invalid", got)
	}
	_, err = berth.NewPrincipal(&countingReader{}, "ci-web", "robot", now)
	if got := berth.ErrorCode(err); got != berth.CodeInvalid {
		t.Errorf("NewPrincipal with an unknown kind: code %q, want invalid", got)
	}
	_, err = berth.NewPrincipal(bytes.NewReader(make([]byte, 20)), "ci-web", berth.PrincipalService, now)
	if err == nil || berth.AsError(err) != nil {
		t.Errorf("NewPrincipal with an exhausted random source: %v, want an internal error", err)
	}
}

func TestParseClientIDAndSecretID(t *testing.T) {
	secret := fixedSecret
	tests := []struct {
		in   string
		want string // "" when invalid
	}{
		{"123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"123E4567-E89B-12D3-A456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
		{"", ""},
		{"123e4567e89b12d3a456426614174000", ""},
		{"123e4567-e89b-12d3-a456-42661417400", ""},
		{"123e4567-e89b-12d3-a456-4266141740000", ""},
		{"123e4567-e89b-12d3-a456_426614174000", ""},
		{"g23e4567-e89b-12d3-a456-426614174000", ""},
		{"{123e4567-e89b-12d3-a456-426614174000}", ""},
		{" 123e4567-e89b-12d3-a456-42661417400", ""},
		{"ci-web", ""},
		{secret, ""},
	}
	for _, tt := range tests {
		for _, parse := range []struct {
			name string
			fn   func(string) (string, error)
		}{{"ParseClientID", berth.ParseClientID}, {"ParseSecretID", berth.ParseSecretID}, {"ParsePATID", berth.ParsePATID}} {
			got, err := parse.fn(tt.in)
			if tt.want == "" {
				if code := berth.ErrorCode(err); code != berth.CodeInvalid || got != "" {
					t.Errorf("%s(%q) = %q, code %q; want invalid", parse.name, tt.in, got, code)
				}
				if tt.in != "" && err != nil && strings.Contains(err.Error(), tt.in) {
					t.Errorf("%s(%q): the error repeats the input: %v", parse.name, tt.in, err)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("%s(%q) = %q, %v; want %q", parse.name, tt.in, got, err, tt.want)
			}
		}
	}
}

// principalsByKey is an in-memory PrincipalStore holding the few lookups
// FindClient makes; the real stores are tested by internal/storetest.
type principalsByKey struct {
	berth.PrincipalStore // nil: other methods are not called
	list                 []berth.Principal
	calls                []string
}

func (s *principalsByKey) FindPrincipalByClientID(_ context.Context, id string) (berth.Principal, error) {
	s.calls = append(s.calls, "client_id "+id)
	for _, p := range s.list {
		if p.ClientID == id {
			return p, nil
		}
	}
	return berth.Principal{}, berth.Errorf(berth.CodeNotFound, "no principal has client id %s", id)
}

func (s *principalsByKey) FindPrincipalByName(_ context.Context, name string) (berth.Principal, error) {
	s.calls = append(s.calls, "name "+name)
	for _, p := range s.list {
		if p.Name == name {
			return p, nil
		}
	}
	return berth.Principal{}, berth.Errorf(berth.CodeNotFound, "no principal is named %s", name)
}

func TestFindClient(t *testing.T) {
	web := berth.Principal{ID: "00000000-0000-4000-8000-000000000001", Name: "ci-web", ClientID: "123e4567-e89b-12d3-a456-426614174000"}
	tests := []struct {
		name      string
		user      string
		want      string     // the principal's name when found
		code      berth.Code // when not found
		wantCalls []string
	}{
		{"client id", "123e4567-e89b-12d3-a456-426614174000", "ci-web", "", []string{"client_id 123e4567-e89b-12d3-a456-426614174000"}},
		{"upper-case client id", "123E4567-E89B-12D3-A456-426614174000", "ci-web", "", []string{"client_id 123e4567-e89b-12d3-a456-426614174000"}},
		{"name", "ci-web", "ci-web", "", []string{"name ci-web"}},
		{"unknown client id", "00000000-0000-4000-8000-000000000009", "", berth.CodeClientUnknown, []string{"client_id 00000000-0000-4000-8000-000000000009"}},
		// A principal's ID is not its client id.
		{"principal id", web.ID, "", berth.CodeClientUnknown, []string{"client_id " + web.ID}},
		{"unknown name", "ci-api", "", berth.CodeClientUnknown, []string{"name ci-api"}},
		{"empty", "", "", berth.CodeClientUnknown, nil},
		{"neither", "CI Web!", "", berth.CodeClientUnknown, nil},
		{"a secret", fixedSecret, "", berth.CodeClientUnknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &principalsByKey{list: []berth.Principal{web}}
			p, err := berth.FindClient(t.Context(), s, tt.user)
			if got := berth.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q, want %q (err: %v)", got, tt.code, err)
			}
			if p.Name != tt.want {
				t.Errorf("principal %q, want %q", p.Name, tt.want)
			}
			if strings.Join(s.calls, ",") != strings.Join(tt.wantCalls, ",") {
				t.Errorf("store calls %q, want %q", s.calls, tt.wantCalls)
			}
			if err != nil {
				if berth.AsError(err).Hint == "" {
					t.Error("no hint")
				}
				if tt.user == fixedSecret && strings.Contains(err.Error(), fixedSecret[len(berth.SecretPrefix):]) {
					t.Errorf("the error repeats the secret: %v", err)
				}
			}
		})
	}
}

// pagedPrincipals answers FindPrincipals from a sorted list, as a store does,
// counting the pages read.
type pagedPrincipals struct {
	all   []berth.Principal
	pages int
}

func (s *pagedPrincipals) FindPrincipals(_ context.Context, f berth.PrincipalFilter) ([]berth.Principal, error) {
	s.pages++
	var out []berth.Principal
	for _, p := range s.all {
		if p.Name > f.After && (f.Kind == "" || p.Kind == f.Kind) && len(out) < f.Limit {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestAllPrincipalsReadsEveryPage(t *testing.T) {
	s := &pagedPrincipals{}
	for i := range 2500 {
		s.all = append(s.all, berth.Principal{Name: fmt.Sprintf("p%05d", i), Kind: berth.PrincipalService})
	}
	n := 0
	for p, err := range berth.AllPrincipals(context.Background(), s, berth.PrincipalFilter{After: "p02000", Limit: 1}) {
		if err != nil || p.Name != s.all[n].Name {
			t.Fatalf("principal %d: %+v %v", n, p, err)
		}
		n++
	}
	// Full pages, then one short (or empty) page that ends the reading.
	if want := 2500/berth.PrincipalPage + 1; n != 2500 || s.pages != want {
		t.Fatalf("yielded %d of 2500 in %d pages, want %d (the caller's After and Limit are ignored)", n, s.pages, want)
	}
}
