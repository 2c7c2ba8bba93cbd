package berth_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/berth-dev/berth"
)

// The fuzz targets of the parsers that read what any caller sends, before
// or without authentication. Their seed corpora are in testdata/fuzz; .ci/run
// runs each for a fixed time. Each states what must hold for every input,
// beyond not panicking.

func FuzzParseDockerScope(f *testing.F) {
	for _, s := range []string{"repository:team/app:pull,push", "registry:catalog:*", "repository(plugin):a/b:pull",
		"repository:a:pull repository:a:push registry:api:*", "registry:metrics:pull", "repository:localhost:5000/a:pull", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ras, err := berth.ParseDockerScope(s)
		if err != nil {
			if !berth.IsCode(err, berth.CodeInvalid) {
				t.Fatalf("code %s: %v", berth.ErrorCode(err), err)
			}
			return
		}
		if len(ras) > 64 {
			t.Fatalf("%d resources", len(ras))
		}
		for _, ra := range ras {
			for _, a := range ra.Actions {
				if !slices.Contains([]string{"pull", "push", "delete", "*"}, a) {
					t.Fatalf("action %q granted a place", a)
				}
			}
			// What a token's scope prints parses back to itself.
			again, err := berth.ParseDockerScope(ra.String())
			if err != nil || len(again) != 1 || again[0].String() != ra.String() {
				t.Fatalf("%q printed as %q, which parses to %v, %v", s, ra.String(), again, err)
			}
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "sha256:", "md5:abc", "SHA256:" + strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := berth.ParseDigest(s)
		if err != nil {
			if !berth.IsCode(err, berth.CodeDigestInvalid) {
				t.Fatalf("code %s", berth.ErrorCode(err))
			}
			return
		}
		if d.String() != s || d.Algorithm()+":"+d.Encoded() != s {
			t.Fatalf("%q parsed as %q", s, d)
		}
		if strings.ContainsAny(s, "/\\\x00") || !berth.IsDigestReference(s) {
			t.Fatalf("digest %q is not a safe path component and reference", s)
		}
	})
}

func FuzzRepositoryNameAndTag(f *testing.F) {
	for _, s := range []string{"team/app", "a", "a__b/c-d.e", "Team/App", "a//b", "../etc", "v1.0", "latest", "-x", strings.Repeat("a/", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if berth.ValidateRepositoryName(s) == nil {
			if len(s) > berth.MaxRepositoryNameLength || strings.Contains(s, "..") || strings.HasPrefix(s, "/") || strings.ContainsAny(s, ":@ \x00") {
				t.Fatalf("repository name %q accepted", s)
			}
		}
		if berth.ValidateTag(s) == nil {
			if len(s) > 128 || strings.ContainsAny(s, "/:@ ") || berth.IsDigestReference(s) {
				t.Fatalf("tag %q accepted", s)
			}
		}
	})
}

// FuzzCredentialFormats: the client secret, refresh token and client id
// formats, which every authentication reads first.
func FuzzCredentialFormats(f *testing.F) {
	for _, s := range []string{"brt_" + strings.Repeat("A", 38), "brr_" + strings.Repeat("z", 38), "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
		"0B5C7E3A-8F0E-4C56-9D6E-2F4B1A9C3D70", "eyJhbGciOiJFUzI1NiJ9.e30.sig", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := berth.CheckSecretFormat(s); err == nil {
			if len(s) != berth.SecretLength || !strings.HasPrefix(s, berth.SecretPrefix) {
				t.Fatalf("secret format accepts %q", s)
			}
		} else if strings.Contains(err.Error(), s) && len(s) > 8 {
			t.Fatalf("the refusal quotes the candidate secret: %v", err)
		}
		if v, err := berth.ParseRefreshTokenValue(s); err == nil && v.Reveal() != s {
			t.Fatalf("refresh token %q parsed as another value", s)
		}
		if id, err := berth.ParseClientID(s); err == nil {
			if again, err := berth.ParseClientID(id); err != nil || again != id || len(id) != 36 {
				t.Fatalf("client id %q canonical %q does not parse back", s, id)
			}
		}
	})
}

// FuzzRedactCredentials: what the credential detector redacts holds no
// credential any more, and keeps the rest.
func FuzzRedactCredentials(f *testing.F) {
	for _, s := range []string{"brt_" + strings.Repeat("A", 38), "a brr_" + strings.Repeat("z", 38) + " b", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"eyJeyJeyJ.", "brt_brt_brt_", "plain team/app"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := berth.RedactCredentials(s)
		if berth.HoldsCredential(r) {
			t.Fatalf("RedactCredentials(%q) = %q still holds a credential", s, r)
		}
		if !berth.HoldsCredential(s) && r != s {
			t.Fatalf("RedactCredentials changed %q, which holds none, to %q", s, r)
		}
	})
}

// FuzzEscapeLine: an escaped field is one line of valid UTF-8 with no
// unsafe rune.
func FuzzEscapeLine(f *testing.F) {
	for _, s := range []string{"team/app", "x\n#9999 allowed", "\x1b[31m\u202e\u200b", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := berth.EscapeLine(s)
		if !utf8.ValidString(e) {
			t.Fatalf("EscapeLine(%q) = %q is not UTF-8", s, e)
		}
		for _, r := range e {
			if berth.UnsafeRune(r) || r == '\n' || r == '\t' {
				t.Fatalf("EscapeLine(%q) = %q holds %U", s, e, r)
			}
		}
	})
}

// FuzzPeopleInputs: what a person's browser or an identity provider sends:
// the user code typed on /device, groups claim values, username claims, the
// session cookie and a personal access token.
func FuzzPeopleInputs(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "corp:/team/ops", "Ada.Lovelace@corp.example", "brs_" + strings.Repeat("A", 38),
		"brp_" + strings.Repeat("z", 38), "", "ÄÖ-ü", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if code, err := berth.NormalizeUserCode(s); err == nil {
			if again, err := berth.NormalizeUserCode(code); err != nil || again != code || len(code) != 9 {
				t.Fatalf("user code %q normalized to %q, which does not normalize to itself", s, code)
			}
		}
		if g, err := berth.ParseGroup(s); err == nil {
			if string(g) != s || berth.ValidatePrincipalName(g.Provider()) != nil && g.Provider() != "" {
				t.Fatalf("group %q parsed as %q", s, g)
			}
		}
		if groups, _ := berth.GroupsOf("corp", []string{s}); len(groups) == 1 {
			if _, err := berth.ParseGroup(string(groups[0])); err != nil {
				t.Fatalf("GroupsOf made %q, which ParseGroup refuses", groups[0])
			}
		}
		name := berth.UserName(s, func(string) bool { return false })
		if err := berth.ValidatePrincipalName(name); err != nil || name == berth.AdminName || name == berth.AnonymousName {
			t.Fatalf("UserName(%q) = %q: %v", s, name, err)
		}
		if h := berth.SessionValueHash(s); h != "" && (len(h) != 64 || !strings.HasPrefix(s, berth.SessionValuePrefix)) {
			t.Fatalf("SessionValueHash accepts %q", s)
		}
		if berth.IsPATValue(s) && (len(s) != berth.PATLength || !strings.HasPrefix(s, berth.PATPrefix)) {
			t.Fatalf("IsPATValue accepts %q", s)
		}
	})
}
