package berth_test

import (
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth"
)

func TestEscapeLine(t *testing.T) {
	for in, want := range map[string]string{
		"team/app":                     "team/app",
		"日本 é":                         "日本 é",
		"x\n#9999 allowed":             `x\u000a#9999 allowed`,
		"\x1b[31mred\x07":              `\u001b[31mred\u0007`,
		"a\u202eb\u2066c\u200bd\ufeff": `a\u202eb\u2066c\u200bd\ufeff`,
		"tab\there\r":                  `tab\u0009here\u000d`,
		"bad \xff byte":                `bad \xff byte`,
		"\u0085":                       `\u0085`,
	} {
		if got := berth.EscapeLine(in); got != want {
			t.Errorf("EscapeLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// A description is one line of visible text: overrides and zero-width
// characters, which would make it read otherwise than it is, are refused.
func TestDescriptionsAreVisibleText(t *testing.T) {
	h, err := berth.NewSecretHasher(make([]byte, berth.SecretPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{3})
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"deploy key \u202egnp.exe", "zero\u200bwidth", "bom\ufeff", "two\nlines", "bell\a", "isolate\u2067x"} {
		if _, _, err := berth.NewSecret(rnd, h, "p", now, time.Hour, d); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("secret description %q: %v, want invalid", d, err)
		}
		if _, err := berth.NewWebhook(rnd, "https://hooks.example.com/x", []berth.EventType{berth.EventSecretExpiring}, d, now); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("webhook description %q: %v, want invalid", d, err)
		}
	}
	if _, _, err := berth.NewSecret(rnd, h, "p", now, time.Hour, "déploiement 日本 — ok"); err != nil {
		t.Errorf("a plain description: %v", err)
	}
}

func TestTruncateKeepsCharacters(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"team/app", 40, "team/app"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: cutting inside it would leave invalid UTF-8
		{"ééé", 3, "é…"},
	} {
		if got := berth.Truncate(c.in, c.n); got != c.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
