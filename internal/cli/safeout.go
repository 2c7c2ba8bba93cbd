package cli

import (
	"io"
	"unicode/utf8"

	"github.com/berth-dev/berth"
)

// safeWriter is what every command writes its output through: it passes
// text on, except characters that would let a value the CLI prints (a
// principal name from an audit event, a CI token's claims, a description)
// act on the terminal or lie about what it shows: each berth.UnsafeRune
// (ESC sequences, carriage returns that overwrite a line, bidirectional
// overrides, zero-width characters) is written as \uXXXX, and bytes that are
// not UTF-8 as \xNN, as berth.AppendEscaped does.
//
// The escapes are those of JSON strings, and those characters can only occur
// inside strings of a JSON document, so -o json output escaped this way
// decodes to the same values.
type safeWriter struct {
	w       io.Writer
	pending []byte // the start of a UTF-8 sequence cut by the end of a Write
}

func newSafeWriter(w io.Writer) *safeWriter { return &safeWriter{w: w} }

// Unwrap returns the writer underneath, for output that must drive the
// terminal on purpose (scan's progress line).
func (s *safeWriter) Unwrap() io.Writer { return s.w }

// Write writes p, escaped; it reports len(p) on success.
func (s *safeWriter) Write(p []byte) (int, error) {
	b := p
	if len(s.pending) > 0 {
		b = append(s.pending, p...)
		s.pending = nil
	}
	// A UTF-8 sequence cut by the end of p waits for the next Write.
	end := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				end = i
			}
			break
		}
	}
	s.pending = append(s.pending, b[end:]...)
	if _, err := s.w.Write(berth.AppendEscaped(make([]byte, 0, end+16), string(b[:end]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a cut sequence left at the end of the output, escaped.
func (s *safeWriter) Flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	out := berth.AppendEscaped(nil, string(s.pending))
	s.pending = nil
	_, err := s.w.Write(out)
	return err
}
