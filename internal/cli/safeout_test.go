package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSafeWriterEscapes(t *testing.T) {
	in := "ok: é, 日本, tab\there\n\x1b[31mred\x1b[0m \r overwritten \u202eevil\u202c \u200bzero \u0085 \xff\n"
	want := `ok: é, 日本, tab` + "\there\n" + `\u001b[31mred\u001b[0m \u000d overwritten \u202eevil\u202c \u200bzero \u0085 \xff` + "\n"
	// Byte by byte too: a UTF-8 sequence cut between two writes is kept whole.
	for _, chunk := range []int{len(in), 1, 2, 3} {
		var out bytes.Buffer
		w := newSafeWriter(&out)
		for i := 0; i < len(in); i += chunk {
			p := []byte(in[i:min(i+chunk, len(in))])
			if n, err := w.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", p, n, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("chunks of %d:\n got %q\nwant %q", chunk, out.String(), want)
		}
	}
	// A sequence cut at the very end is flushed escaped.
	var out bytes.Buffer
	w := newSafeWriter(&out)
	_, _ = w.Write([]byte("x\xe6\x97"))
	_ = w.Flush()
	if out.String() != `x\xe6\x97` {
		t.Errorf("cut sequence at the end: %q", out.String())
	}
}

// -o json output escaped by the writer decodes to the same values.
func TestSafeWriterKeepsJSON(t *testing.T) {
	v := map[string]string{"name": "a\u202eb\u0085c\u200dd\x1be", "plain": "日本 \"quoted\" \\ back"}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := newSafeWriter(&out).Write(b); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("escaped JSON %s: %v", out.Bytes(), err)
	}
	if got["name"] != v["name"] || got["plain"] != v["plain"] {
		t.Errorf("decoded %q, want %q", got, v)
	}
	if strings.ContainsRune(out.String(), '\u202e') {
		t.Errorf("the override reached the output: %q", out.String())
	}
}
