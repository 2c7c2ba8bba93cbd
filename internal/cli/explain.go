package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
)

func newExplainCommand(e *env) *cobra.Command {
	var search string
	cmd := &cobra.Command{
		Use:   "explain [CODE | MESSAGE] [--search TEXT]",
		Short: "Explain a reason code, or another system's error: what it means, its usual causes and the fixes",
		Long: `Every error berth returns carries a stable reason code, such as
secret_expired or role_missing: in the OCI error's detail.reason, in an OAuth
2.0 error body, in a management API error and in the audit log.

berth explain CODE prints what the code means, its HTTP status and OCI error
code, why it usually happens and what fixes it. berth explain with no argument
lists every code. The same text is in docs/errors.md. It needs no server.

berth explain also knows other systems' errors: Microsoft Entra ID's AADSTS
codes, and the errors of Azure Container Registry, Docker Hub, Amazon ECR,
GitHub, GitLab, Harbor and the docker client. Give the code (AADSTS7000222) or
paste the message as the tool printed it; berth explain says what it means
there, its usual causes and fixes there, and berth's equivalent. --search TEXT
finds every code and error whose text holds all the words. docs/from-acr.md
maps the failures of Azure Container Registry and Azure Pipelines to berth.`,
		Example: `  berth explain secret_expired
  berth explain AADSTS7000222
  berth explain "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information."
  berth explain --search "rate limit"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if search != "" && len(args) > 0 {
				return berth.Errorf(berth.CodeInvalid, "give a code or message, or --search TEXT, not both").
					WithHint("berth explain --search %s", berth.ShellQuote(search))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if search != "" {
				return e.explainSearch(search)
			}
			if len(args) == 0 {
				if e.output == "json" {
					all := make([]codeJSON, len(berth.Codes))
					for i, info := range berth.Codes {
						all[i] = toCodeJSON(info)
					}
					return e.printJSON(all)
				}
				writeCodeList(e.stdout)
				return nil
			}
			arg := strings.Join(args, " ")
			info, err := findCode(arg)
			if err != nil {
				found := berth.MatchForeign(arg)
				if len(found) == 0 {
					return err
				}
				if e.output == "json" {
					return e.printJSON(toForeignJSON(found[0]))
				}
				writeForeignText(e.stdout, found[0], found[1:])
				return nil
			}
			if e.output == "json" {
				return e.printJSON(toCodeJSON(info))
			}
			writeCodeText(e.stdout, info)
			return nil
		},
	}
	cmd.Flags().StringVar(&search, "search", "", "list every code and other system's error whose text holds all these words")
	return cmd
}

// codeJSON is a code table entry as berth explain -o json shows it.
type codeJSON struct {
	Code    berth.Code `json:"code"`
	Status  int        `json:"status"`
	OCI     string     `json:"oci"`
	Summary string     `json:"summary"`
	Causes  []string   `json:"causes"`
	Fixes   []string   `json:"fixes"`
}

func toCodeJSON(info berth.CodeInfo) codeJSON {
	return codeJSON{info.Code, info.Status, info.OCI, info.Summary, info.Causes, info.Fixes}
}

// findCode returns the table entry for name, read leniently (any case, dashes
// for underscores). An unknown name is an invalid error naming the nearest
// codes.
func findCode(name string) (berth.CodeInfo, error) {
	want := berth.Code(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_"))
	for _, info := range berth.Codes {
		if info.Code == want {
			return info, nil
		}
	}
	e := berth.Errorf(berth.CodeInvalid, "%q is not a berth reason code", truncateArg(name)).
		WithHint("berth explain, with no argument, lists every code")
	if near := nearestCodes(string(want), strings.ToUpper(strings.TrimSpace(name))); len(near) > 0 {
		e.Message += "; the nearest are " + strings.Join(near, ", ")
		e.Hint = "berth explain " + near[0] + "; " + e.Hint
	}
	return berth.CodeInfo{}, e
}

func truncateArg(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// maxNearest bounds the codes an unknown code's error suggests.
const maxNearest = 5

// nearestCodes returns the codes closest to want. When oci is an OCI error
// code, that is every code answered with it (UNAUTHORIZED suggests all the
// authentication codes); otherwise the codes want is part of, then those within
// a small edit distance, nearest first, at most maxNearest.
func nearestCodes(want, oci string) []string {
	var byOCI []string
	for _, info := range berth.Codes {
		if info.OCI == oci {
			byOCI = append(byOCI, string(info.Code))
		}
	}
	if len(byOCI) > 0 {
		return byOCI
	}
	type scored struct {
		code  string
		score int
	}
	var found []scored
	for _, info := range berth.Codes {
		c := string(info.Code)
		d := berth.EditDistance(want, c)
		switch {
		case want == "":
			continue
		case strings.HasPrefix(c, want) || strings.Contains(c, want):
			d = min(d, 1)
		case d > max(2, len(want)/3):
			continue
		}
		found = append(found, scored{c, d})
	}
	slices.SortStableFunc(found, func(a, b scored) int { return a.score - b.score })
	var out []string
	for _, s := range found {
		if len(out) == maxNearest {
			break
		}
		out = append(out, s.code)
	}
	return out
}

// writeCodeList writes every code with its summary, by group.
func writeCodeList(w io.Writer) {
	for i, g := range berth.CodeGroups {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s:\n", groupTitle(g))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, info := range codesOf(g) {
			fmt.Fprintf(tw, "  %s\t%s\n", info.Code, info.Summary)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nberth explain CODE shows the usual causes of one code and its fixes.")
}

// writeCodeText writes one code as berth explain CODE shows it.
func writeCodeText(w io.Writer, info berth.CodeInfo) {
	fmt.Fprintf(w, "%s (%s)\n", info.Code, info.Group)
	fmt.Fprintf(w, "  HTTP status: %d %s\n", info.Status, http.StatusText(info.Status))
	fmt.Fprintf(w, "  OCI code:    %s\n\n", info.OCI)
	fmt.Fprintf(w, "%s\n\nUsual causes:\n", info.Summary)
	for _, c := range info.Causes {
		fmt.Fprintf(w, "  - %s\n", c)
	}
	fmt.Fprintln(w, "\nFixes:")
	for _, f := range info.Fixes {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}

// groupTitle is g with a capital initial, as a heading.
func groupTitle(g berth.CodeGroup) string {
	s := string(g)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func codesOf(g berth.CodeGroup) []berth.CodeInfo {
	var out []berth.CodeInfo
	for _, info := range berth.Codes {
		if info.Group == g {
			out = append(out, info)
		}
	}
	return out
}

// errorsDocPath is docs/errors.md relative to this package, for its test.
const errorsDocPath = "../../docs/errors.md"

// errorsMarkdown renders docs/errors.md from the code table, so the document
// and berth explain never disagree; TestErrorsDocIsCurrent keeps the file equal
// to it.
func errorsMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString(`# Reason codes

<!-- Generated from the code table in codes.go; do not edit. Regenerate with:
     go test ./internal/cli -run TestErrorsDocIsCurrent -update -->

Every error berth returns carries a stable reason code: in the OCI error's
` + "`detail.reason`" + ` on ` + "`/v2/`" + `, in OAuth 2.0 error bodies from ` + "`/oauth2/token`" + ` (` + "`error_codes`" + ` and
` + "`reason`" + `), as ` + "`code`" + ` in management API errors, and in the audit log. Codes may be
added, never renamed. Beside the code, each error carries a message with the facts
of the case and a hint naming the command that fixes it.

` + "`berth explain CODE`" + ` prints the same text as this page; ` + "`berth explain`" + ` lists every code.
When the server's ` + "`url`" + ` is set, every error also links to ` + "`URL/errors/CODE`" + `, where the
console shows this text: ` + "`detail.explain`" + ` on ` + "`/v2/`" + `, ` + "`error_uri`" + ` from ` + "`/oauth2/token`" + ` (and
in a 401's Bearer challenge, unless the request sent no credentials), ` + "`explain`" + ` in
management API errors; the CLI prints it under the hint. Without ` + "`url`" + ` there is no
link: one built from the request's ` + "`Host`" + ` would name whatever host the client sent.
`)
	for _, g := range berth.CodeGroups {
		fmt.Fprintf(&b, "\n## %s\n\n", groupTitle(g))
		codes := codesOf(g)
		b.WriteString("| code | HTTP status | OCI code | meaning |\n|---|---|---|---|\n")
		for _, info := range codes {
			fmt.Fprintf(&b, "| [`%s`](#%s) | %d | `%s` | %s |\n", info.Code, info.Code, info.Status, info.OCI, strings.ReplaceAll(info.Summary, "|", `\|`))
		}
		for _, info := range codes {
			fmt.Fprintf(&b, "\n### %s\n\n", info.Code)
			fmt.Fprintf(&b, "HTTP status %d %s, OCI code `%s`.\n\n%s\n\n", info.Status, http.StatusText(info.Status), info.OCI, info.Summary)
			b.WriteString("Usual causes:\n\n")
			for _, c := range info.Causes {
				fmt.Fprintf(&b, "- %s\n", c)
			}
			b.WriteString("\nFixes:\n\n")
			for _, f := range info.Fixes {
				fmt.Fprintf(&b, "- %s\n", f)
			}
		}
	}
	return b.Bytes()
}
