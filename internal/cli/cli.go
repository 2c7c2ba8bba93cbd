package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
)

// env is what commands may read from the process: its streams and environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	output         string // "text" or "json"
}

// Run executes the command line args (without the program name) and returns
// the process exit status.
//
// Everything it prints goes through a safeWriter: values that came from the
// server, a token or a file never reach the terminal as control or bidi
// characters.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	out, errOut := newSafeWriter(stdout), newSafeWriter(stderr)
	defer out.Flush()
	defer errOut.Flush()
	stdout, stderr = out, errOut
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth is an OCI registry with its own identity provider, made for CI pipelines",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A typo in -o must not fall back to text that a script cannot parse,
		// nor run the command at all.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if e.output == "yaml" && cmd.Annotations[outputYAML] != "" {
				return nil
			}
			if e.output != "text" && e.output != "json" {
				out := e.output
				e.output = "text"
				return berth.Errorf(berth.CodeInvalid, "output format %q is not text or json", berth.Truncate(out, 20)).WithHint("%s -o json", cmd.CommandPath())
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&e.output, "output", "o", "text", "output format: text or json (berth scan also takes sarif, berth pull-secret yaml)")
	root.AddCommand(newServeCommand(e), newGCCommand(e))
	root.AddCommand(newKeysCommand(e), newMigrateCommand(e), newAdminCommand(e))
	root.AddCommand(newPrincipalCommand(e), newSecretCommand(e), newRoleCommand(e), newAccessCommand(e))
	root.AddCommand(newPipelineCommand(e), newConnectionCommand(e), newIdPCommand(e), newTokenCommand(e))
	root.AddCommand(newAuditCommand(e))
	root.AddCommand(newWebhookCommand(e))
	root.AddCommand(newUpstreamCommand(e))
	root.AddCommand(newRetentionCommand(e), newImmutableCommand(e), newQuotaCommand(e))
	root.AddCommand(newRepoCommand(e), newTagCommand(e))
	root.AddCommand(newLoginCommand(e), newLogoutCommand(e), newCredentialHelperCommand(e))
	root.AddCommand(newDoctorCommand(e))
	root.AddCommand(newKubeletProviderCommand(e), newPullSecretCommand(e))
	root.AddCommand(newExplainCommand(e), newScanCommand(e), newVersionCommand(e))
	root.SetVersionTemplate(`{{printf "berth %s\n" .Version}}`)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if r, ok := errors.AsType[reported](err); ok {
			fmt.Fprintln(stderr, r.summary)
			return 1
		}
		e.printError(err)
		return 1
	}
	return 0
}

// reported is a failure a command has already shown in its own output (doctor's
// report): Run exits 1 and writes only the one-line summary, to stderr, so
// that with -o json stdout stays one JSON document.
type reported struct{ summary string }

func (r reported) Error() string { return r.summary }

// printError shows err with its reason code and hint, and the server's link
// to the code's explanation on its own line when the server sent one (it
// does when its url is set); an error that is not a *berth.Error is shown as
// it is, since on the command line it is the user's own.
func (e *env) printError(err error) {
	be := berth.AsError(err)
	explain := ""
	if be != nil {
		explain, _ = be.Detail[berth.DetailExplain].(string)
	}
	if e.output == "json" {
		out := map[string]any{"code": berth.ErrorCode(err), "message": err.Error()}
		if be != nil {
			out["message"] = be.Message
			if be.Hint != "" {
				out["hint"] = be.Hint
			}
			if explain != "" {
				out[berth.DetailExplain] = explain
			}
		}
		_ = json.NewEncoder(e.stdout).Encode(map[string]any{"error": out})
		return
	}
	if be == nil {
		fmt.Fprintf(e.stderr, "error: %v\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "error: %s [%s]\n", be.Message, be.Code)
	if be.Hint != "" {
		fmt.Fprintf(e.stderr, "Try: %s\n", be.Hint)
	}
	if explain != "" {
		fmt.Fprintf(e.stderr, "  see %s\n", explain)
	}
}

// printJSON writes v as one indented JSON document.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readStdinLine reads the first line of in, what --…-stdin gives a
// secret: at most 8 KiB, without its line ending. what names the value, and
// usage is the command that reads it, in the refusal of a failed read.
func readStdinLine(in io.Reader, what, usage string) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(in, 8192)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", berth.Errorf(berth.CodeInvalid, "cannot read %s from stdin: %v", what, err).
			WithHint("pipe it in from a file: %s < FILE", usage)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
