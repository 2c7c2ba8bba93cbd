package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/scan"
)

// scanOptions are the flags of berth scan.
type scanOptions struct {
	git         bool
	baseline    string
	revoke      bool
	progress    bool
	maxFileSize string
}

func newScanCommand(e *env) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan [PATH…]",
		Short: "Find berth secrets and other credentials in files and git history",
		Long: `Scan files and directories (the current directory when no PATH is given) for
credentials: berth client secrets, refresh tokens and webhook secrets
(confirmed by their checksum, so a look-alike is never reported), private keys,
docker config auths entries, AWS access key ids, GitHub, GitLab and Azure
secrets, and JWTs.

Directories are walked recursively, skipping .git, symbolic links, binary files
and files larger than --max-file-size (noted). With --git each PATH must be a
git repository, and what is scanned is its whole history instead of its work
tree: every blob reachable from any branch, tag or other ref, so a secret that
a later commit removed is still found, with the commit that added it. Without
--git a repository's work tree is scanned and a note says --git exists: the
history of a large repository takes longer to read, and is asked for.

Each finding shows file:line:column, its kind and a redacted excerpt, never
the credential. -o json writes one report, which --baseline FILE reads back
later to accept the findings it holds (matched by fingerprint); -o sarif writes
SARIF 2.1.0 for code-scanning tools. The exit status is 1 when anything not in
the baseline is found.

--revoke revokes each berth client secret found at once, on the server and with
the credentials the other commands use (it needs the role owner on registry),
and reports each revocation. Progress goes to stderr when it is a terminal, or
with --progress.`,
		Example: `  berth scan .
  berth scan --git -o sarif . > berth-scan.sarif
  berth scan -o json . > baseline.json; berth scan --baseline baseline.json .
  berth scan --git --revoke .`,
		// -o sarif is this command's own; the root accepts text and json.
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch e.output {
			case "text", "json", "sarif":
				return nil
			}
			out := e.output
			e.output = "text"
			return berth.Errorf(berth.CodeInvalid, "output format %q is not text, json or sarif", out).WithHint("-o sarif")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			return e.scan(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.git, "git", false, "scan the whole history of each PATH, a git repository, instead of its work tree")
	f.StringVar(&o.baseline, "baseline", "", "accept the findings of this earlier berth scan -o json (or -o sarif) output")
	f.BoolVar(&o.revoke, "revoke", false, "revoke each berth client secret found, on the configured server (needs owner on registry)")
	f.BoolVar(&o.progress, "progress", false, "show progress on stderr even when it is not a terminal")
	f.StringVar(&o.maxFileSize, "max-file-size", "10MiB", "skip larger files and blobs: bytes, or a number with KiB, MiB or GiB")
	return cmd
}

func (e *env) scan(ctx context.Context, paths []string, o scanOptions) error {
	maxSize, err := parseSize(o.maxFileSize)
	if err != nil {
		return err
	}
	var baseline scan.Baseline
	if o.baseline != "" {
		if baseline, err = scan.LoadBaseline(o.baseline); err != nil {
			return berth.Errorf(berth.CodeInvalid, "%v", err).WithHint("give --baseline the file that berth scan -o json wrote")
		}
	}
	// Find the server before reading anything, so a missing credential
	// stops the scan rather than the revocations after it.
	var c *client.Client
	if o.revoke {
		if c, err = e.apiClient(); err != nil {
			return err
		}
	}

	opt := scan.Options{MaxFileSize: maxSize}
	stopProgress := e.scanProgress(&opt, o.progress)
	var all scan.Result
	add := func(r scan.Result) {
		all.Findings = append(all.Findings, r.Findings...)
		all.Skipped = append(all.Skipped, r.Skipped...)
		all.Stats.Files += r.Stats.Files
		all.Stats.Bytes += r.Stats.Bytes
		all.Stats.Binary += r.Stats.Binary
		all.Stats.Commits += r.Stats.Commits
		all.Stats.Findings += r.Stats.Findings
	}
	if o.git {
		for _, p := range paths {
			r, err := scan.ScanHistory(ctx, p, opt)
			if err != nil {
				stopProgress()
				return berth.Errorf(berth.CodeInvalid, "%v", err).
					WithHint("--git scans the history of a git repository; drop --git to scan files")
			}
			add(r)
		}
	} else {
		for _, p := range paths {
			if info, err := os.Stat(p); err == nil && info.IsDir() && scan.IsGitRepository(p) {
				fmt.Fprintf(e.stderr, "note: %s is a git repository; its work tree is scanned, and berth scan --git %s scans its history\n", p, p)
			}
		}
		r, err := scan.ScanFiles(ctx, paths, opt)
		if err != nil {
			stopProgress()
			return berth.Errorf(berth.CodeInvalid, "%v", err)
		}
		add(r)
	}
	stopProgress()

	report := scan.Report{Skipped: all.Skipped, Scanned: all.Stats}
	report.Findings, report.Suppressed = baseline.Filter(all.Findings)
	if report.Findings == nil {
		report.Findings = []scan.Finding{}
	}
	if report.Skipped == nil {
		report.Skipped = []scan.Skipped{}
	}
	if c != nil {
		report.Revocations = revokeFound(ctx, c, report.Findings)
	}

	switch e.output {
	case "json":
		err = scan.WriteJSON(e.stdout, report)
	case "sarif":
		err = scan.WriteSARIF(e.stdout, report, Version)
	default:
		for _, s := range report.Skipped {
			fmt.Fprintf(e.stderr, "skipped %s: %s\n", s.Path, s.Reason)
		}
		err = scan.WriteText(e.stdout, report)
	}
	if err != nil {
		return err
	}
	summary := scanSummary(report, o.git)
	if len(report.Findings) > 0 {
		return reported{summary}
	}
	if e.output == "text" {
		fmt.Fprintln(e.stderr, summary)
	}
	return nil
}

// revokeFound revokes each distinct berth client secret among fs, those in
// docker config auths entries included.
func revokeFound(ctx context.Context, c *client.Client, fs []scan.Finding) []scan.Revocation {
	var out []scan.Revocation
	done := map[string]bool{}
	for _, f := range fs {
		leak, ok := f.BerthSecret()
		if !ok || done[leak.Fingerprint] {
			continue
		}
		done[leak.Fingerprint] = true
		v := scan.Revocation{Fingerprint: leak.Fingerprint, Excerpt: leak.Excerpt}
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		got, err := c.RevokeLeakedSecret(rctx, leak.Value)
		cancel()
		switch {
		case err == nil:
			v.Status, v.Principal, v.SecretID, v.RefreshTokensRevoked = scan.RevocationRevoked, got.Principal, got.SecretID, got.RefreshTokensRevoked
			if got.AlreadyRevoked {
				v.Status = scan.RevocationAlreadyRevoked
			}
		case berth.IsCode(err, berth.CodeNotFound):
			v.Status = scan.RevocationNotFound
		default:
			v.Status = scan.RevocationFailed
			if be := berth.AsError(err); be != nil {
				v.Error = fmt.Sprintf("%s [%s]", be.Message, be.Code)
				if be.Hint != "" {
					v.Error += " (Try: " + be.Hint + ")"
				}
			} else {
				v.Error = err.Error()
			}
		}
		out = append(out, v)
	}
	return out
}

// scanSummary is the one line that ends a scan, on stderr.
func scanSummary(r scan.Report, git bool) string {
	what := fmt.Sprintf("%d file%s", r.Scanned.Files, plural(int(r.Scanned.Files)))
	if git {
		what = fmt.Sprintf("%d blob%s of %d commit%s", r.Scanned.Files, plural(int(r.Scanned.Files)), r.Scanned.Commits, plural(int(r.Scanned.Commits)))
	}
	var b strings.Builder
	if n := len(r.Findings); n > 0 {
		fmt.Fprintf(&b, "berth scan: %d credential%s found in %s (%s)", n, plural(n), what, berth.FormatBytes(r.Scanned.Bytes))
	} else {
		fmt.Fprintf(&b, "berth scan: no credentials found in %s (%s)", what, berth.FormatBytes(r.Scanned.Bytes))
	}
	if r.Suppressed > 0 {
		fmt.Fprintf(&b, "; %d accepted by the baseline", r.Suppressed)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "; %d skipped", len(r.Skipped))
	}
	if n := count(r.Revocations, scan.RevocationRevoked); n > 0 {
		fmt.Fprintf(&b, "; %d secret%s revoked", n, plural(n))
	}
	if n := count(r.Revocations, scan.RevocationFailed); n > 0 {
		fmt.Fprintf(&b, "; %d revocation%s failed", n, plural(n))
	}
	return b.String()
}

func count(vs []scan.Revocation, status string) int {
	n := 0
	for _, v := range vs {
		if v.Status == status {
			n++
		}
	}
	return n
}

// scanProgress sets opt.Progress to write a progress line to stderr when
// it is a terminal (rewritten in place) or when forced (one line each
// time); the returned function ends it.
func (e *env) scanProgress(opt *scan.Options, force bool) (stop func()) {
	tty := isTerminal(e.stderr)
	term := e.stderr
	if s, ok := term.(*safeWriter); ok && tty { // the progress line drives the terminal on purpose
		term = s.Unwrap()
	}
	if !tty && !force {
		return func() {}
	}
	var mu sync.Mutex
	wrote := false
	opt.Progress = func(s scan.Stats) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("scanning: %d file%s, %s, %d found", s.Files, plural(int(s.Files)), berth.FormatBytes(s.Bytes), s.Findings)
		if s.Total > 0 {
			line = fmt.Sprintf("scanning history: %d of %d blobs (%d%%), %s, %d found", s.Files, s.Total, s.Files*100/s.Total, berth.FormatBytes(s.Bytes), s.Findings)
		}
		if tty {
			fmt.Fprintf(term, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(e.stderr, line)
		}
		wrote = true
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if tty && wrote {
			io.WriteString(term, "\r\033[K")
		}
	}
}

func isTerminal(w io.Writer) bool {
	if s, ok := w.(*safeWriter); ok {
		w = s.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// parseSize reads a size such as --max-file-size takes (berth.ParseByteSize:
// 10MiB, 10MB, 10M), positive and at most 1 TiB.
func parseSize(s string) (int64, error) {
	n, err := berth.ParseByteSize(s)
	if err != nil || n <= 0 || n > 1<<40 {
		return 0, berth.Errorf(berth.CodeInvalid, "size %q is not a positive size of at most 1 TiB", s).WithHint("--max-file-size 10MiB")
	}
	return n, nil
}
