package cli

import (
	"strings"
	"testing"
)

func TestOutputFormatRefused(t *testing.T) {
	// A typo in -o must not silently fall back to text, which a script would
	// then fail to parse.
	code, stdout, stderr := runCLI(t, nil, "gc", "--data", t.TempDir(), "-o", "jsn")
	if code != 1 {
		t.Fatalf("-o jsn exited %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("-o jsn printed on stdout: %q", stdout)
	}
	if !strings.Contains(stderr, "[invalid]") {
		t.Errorf("stderr %q does not show the reason code [invalid]", stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, _ := runCLI(t, nil, "sevre"); code != 1 {
		t.Errorf("unknown command exited %d, want 1", code)
	}
	if code, _, _ := runCLI(t, nil, "gc", "--no-such-flag"); code != 1 {
		t.Errorf("unknown flag exited %d, want 1", code)
	}
}
