package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/berth-dev/berth"
)

// doctorCheckHelper is the check of the credential helper the docker
// configuration names for the host: it must resolve on PATH and answer get.
const doctorCheckHelper = "helper"

// checkHelper runs the credential helper that docker's clients would run for
// the host (credHelpers[HOST], else credsStore), as they run it: found on
// PATH, given the host on stdin, asked get. A helper that does not resolve
// breaks every pull and push of the host ("exec: docker-credential-…:
// executable file not found"), whatever the login store holds. No helper
// configured, no check.
func (d *doctor) checkHelper(ctx context.Context) {
	helper, source := d.docker.CredHelpers[d.hostKey], fmt.Sprintf("credHelpers[%q]", d.hostKey)
	if helper == "" {
		helper, source = d.docker.CredsStore, "credsStore"
	}
	if helper == "" {
		return
	}
	name := "docker-credential-" + helper
	path, ok := findOnPath(d.e.getenv, name)
	if !ok {
		hint := fmt.Sprintf("install %s, or remove %s from %s", name, source, d.dockerAt)
		if helper == helperName {
			exe, _ := executable()
			hint = berth.AsError(helperMissing(d.e.getenv, exe)).Hint
		}
		d.add(doctorCheckHelper, doctorStatusFail, hint,
			"%s in %s names %s, which is not on PATH: every client fails with exec: %q: executable file not found", source, d.dockerAt, name, name)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, path, "get")
	cmd.Stdin = strings.NewReader(d.hostKey)
	cmd.Env = os.Environ()
	// The helper reads the same configuration as this command.
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "PATH"} {
		if v := d.e.getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var creds struct{ Username, Secret string }
	if err != nil || json.Unmarshal(out.Bytes(), &creds) != nil || creds.Secret == "" {
		said := strings.TrimSpace(out.String())
		if said == "" && err != nil {
			said = err.Error()
		}
		status, hint := doctorStatusWarn, ""
		if helper == helperName {
			status, hint = doctorStatusFail, "berth login "+d.hostKey
		}
		d.add(doctorCheckHelper, status, hint, "%s (%s) does not answer get for %s: %s", name, path, d.hostKey, truncateLine(said, 200))
		return
	}
	d.add(doctorCheckHelper, doctorStatusOK, "", "%s (%s) answers get for %s", name, path, d.hostKey)
}

// truncateLine keeps the first line of s, at most n bytes of it.
func truncateLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// secretFix names what gives the credential's principal name a longer life:
// berth connection save for a service connection's secret (the connection
// renews and tracks it), else a new secret and a login with it. A new login
// with the same secret extends nothing, since a refresh token ends with the
// secret it came from. Which connection uses the secret is what an owner
// may list; anyone else is told by the description the connection gave it.
func (d *doctor) secretFix(ctx context.Context, name string, secret doctorSecret) string {
	if secret.ID != "" {
		if l, err := d.apiClient().ListExpiringSecrets(ctx, "", name); err == nil {
			for _, s := range l.Secrets {
				if s.ID == secret.ID && len(s.Connections) > 0 {
					return fmt.Sprintf("berth connection save %s (renews the secret the connection tracks)", s.Connections[0])
				}
			}
		} else if conn, ok := strings.CutPrefix(secret.Description, "service connection "); ok && berth.ValidateConnectionName(conn) == nil {
			return fmt.Sprintf("berth connection save %s (renews the secret the connection tracks)", conn)
		}
	}
	if d.cred.source == "environment" {
		return fmt.Sprintf("berth secret add %s --expires-in 90d, then export %s with the new value", name, envClientSecret)
	}
	return fmt.Sprintf("berth secret add %s --expires-in 90d, then berth login %s --client-id %s --client-secret-stdin with the new value", name, d.hostKey, name)
}
