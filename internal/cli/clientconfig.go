package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
)

// The variables that tell the CLI where its server is and who it is there.
const (
	envURL          = "BERTH_URL"
	envClientID     = "BERTH_CLIENT_ID"
	envClientSecret = "BERTH_CLIENT_SECRET"
)

// apiTimeout bounds one management request.
const apiTimeout = 30 * time.Second

// apiClient returns a client of the management API of the server BERTH_URL
// names, authenticating with BERTH_CLIENT_ID and BERTH_CLIENT_SECRET. When
// neither of those two is set, it uses what berth login stored (for BERTH_URL's
// host, or the latest login when BERTH_URL is unset too). When nothing is
// found it returns credentials_missing naming what to set.
func (e *env) apiClient() (*client.Client, error) {
	base := strings.TrimSpace(e.getenv(envURL))
	id := strings.TrimSpace(e.getenv(envClientID))
	secret := strings.TrimSpace(e.getenv(envClientSecret))
	if id == "" && secret == "" {
		// The environment wins; without credentials in it, what berth login
		// stored for BERTH_URL's host (or the latest login) stands in.
		if c, ok, err := e.storedLoginClient(base); ok || err != nil {
			return c, err
		}
	}
	var missing []string
	for _, v := range []struct{ name, value string }{{envURL, base}, {envClientID, id}, {envClientSecret, secret}} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		verb := "are"
		if len(missing) == 1 {
			verb = "is"
		}
		return nil, berth.Errorf(berth.CodeCredentialsMissing, "the berth CLI needs a server and credentials, and %s %s not set", joinAnd(missing), verb).
			WithHint("export %s=http://127.0.0.1:5000 %s=CLIENT_ID %s=SECRET (the first admin's are in DATA/initial-admin.json), or berth login HOST once",
				envURL, envClientID, envClientSecret)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "%s is not an http or https URL of a berth server", envURL).
			WithHint("%s=https://registry.example.com, or http://127.0.0.1:5000 for a local server", envURL)
	}
	if u.Scheme == "http" && !berth.IsLoopbackHost(u.Hostname()) {
		fmt.Fprintf(e.stderr, "warning: %s uses plain http to %s: the client secret travels unencrypted; use https\n", envURL, u.Host)
	}
	return client.New(base, id, secret, &http.Client{Timeout: apiTimeout}), nil
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// argsExactly requires n positional arguments, showing usage (such as
// "berth principal create NAME") when they are not there.
func argsExactly(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		verb := "were"
		if len(args) == 1 {
			verb = "was"
		}
		return berth.Errorf(berth.CodeInvalid, "%s takes %d argument%s, and %d %s given", cmd.CommandPath(), n, plural(n), len(args), verb).
			WithHint("%s", usage)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// requireFlag returns invalid when a flag that a command needs is empty.
func requireFlag(name, value, usage string) error {
	if value != "" {
		return nil
	}
	return berth.Errorf(berth.CodeInvalid, "--%s is required", name).WithHint("%s", usage)
}

// table starts an aligned table on stdout.
func (e *env) table() *tabwriter.Writer {
	return tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
}

// formatTime shows a time as the CLI's text output does: RFC 3339 in UTC, to
// the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(*t)
}
