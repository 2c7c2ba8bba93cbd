package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Without url, a server listening beyond loopback warns that its challenges
// name whatever Host a client sends; on loopback it stays quiet.
func TestWarnNoURL(t *testing.T) {
	for addr, warns := range map[string]bool{
		"0.0.0.0:5000": true, "[::]:5000": true, "10.1.2.3:443": true,
		"127.0.0.1:5000": false, "[::1]:5000": false, "localhost:5000": false,
	} {
		var buf bytes.Buffer
		warnNoURL(slog.New(slog.NewTextHandler(&buf, nil)), addr)
		if got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "url is not set"); got != warns {
			t.Errorf("%s: warned %v, want %v: %s", addr, got, warns, buf.String())
		}
	}
}
