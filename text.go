package berth

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// UnsafeRune reports whether r must not reach a terminal, a log or an audit
// record as it is, because it would act on the terminal or hide or reorder
// what is shown: control characters but newline and tab, DEL and the C1
// controls, bidirectional formatting (U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069), zero-width and invisible formatting characters
// (U+200B–U+200D, U+2060–U+2064, U+FEFF), and the line and paragraph
// separators U+2028 and U+2029.
func UnsafeRune(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\n' && r != '\t'
	case r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r >= 0x200b && r <= 0x200d, r >= 0x2060 && r <= 0x2064, r == 0xfeff, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// AppendEscaped appends s to b with each unsafe rune (UnsafeRune) written
// as \uXXXX and each byte that is not UTF-8 as \xNN; newlines and tabs stay.
// The escapes are those of JSON strings.
func AppendEscaped(b []byte, s string) []byte { return appendEscaped(b, s, true) }

// EscapeLine returns s as one line: escaped as AppendEscaped does, newlines
// and tabs included, or s itself when it holds nothing to escape. Audit
// events keep every field so, so that no value forges a line of berth audit.
func EscapeLine(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return string(appendEscaped(make([]byte, 0, len(s)+8), s, false))
		}
	}
	return s
}

func appendEscaped(b []byte, s string, keepLines bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f || keepLines && (c == '\n' || c == '\t') {
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = fmt.Appendf(b, `\x%02x`, c)
		case UnsafeRune(r) || r == '\n' || r == '\t':
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// validateLine checks a line of free text a person typed (a description):
// at most max bytes, UTF-8, and no unsafe rune (UnsafeRune) nor newline or
// tab. what names it in the refusal ("the secret's description").
func validateLine(what, s string, max int) error {
	if len(s) > max {
		return Errorf(CodeInvalid, "%s is %d bytes long; the limit is %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, "%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r == '\n' || r == '\t' || UnsafeRune(r) {
			return Errorf(CodeInvalid, "%s holds the invisible or control character %U; use one line of visible text", what, r).
				WithHint("type the text again without pasting it; %s shows %s", what, strconv.QuoteToASCII(s))
		}
	}
	return nil
}
