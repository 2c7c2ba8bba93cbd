package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth"
)

// foreignJSON is another system's error as berth explain -o json shows it.
type foreignJSON struct {
	ID         string       `json:"id"`
	System     string       `json:"system"`
	Message    string       `json:"message"`
	Meaning    string       `json:"meaning"`
	Causes     []string     `json:"causes"`
	Fixes      []string     `json:"fixes"`
	BerthCodes []berth.Code `json:"berth_codes"`
	InBerth    string       `json:"in_berth"`
}

func toForeignJSON(f berth.ForeignError) foreignJSON {
	codes := f.Berth
	if codes == nil {
		codes = []berth.Code{}
	}
	return foreignJSON{f.ID, f.System, f.Message, f.Meaning, f.Causes, f.Fixes, codes, f.InBerth}
}

// writeForeignText writes another system's error as berth explain shows it,
// naming the other entries the text also matched.
func writeForeignText(w io.Writer, f berth.ForeignError, also []berth.ForeignError) {
	fmt.Fprintf(w, "%s (%s)\n  %s\n\n%s\n\nUsual causes there:\n", f.ID, f.System, f.Message, f.Meaning)
	for _, c := range f.Causes {
		fmt.Fprintf(w, "  - %s\n", c)
	}
	fmt.Fprintln(w, "\nFixes there:")
	for _, x := range f.Fixes {
		fmt.Fprintf(w, "  - %s\n", x)
	}
	fmt.Fprintln(w, "\nIn berth:")
	if len(f.Berth) > 0 {
		codes := make([]string, len(f.Berth))
		for i, c := range f.Berth {
			codes[i] = string(c)
		}
		fmt.Fprintf(w, "  reason codes: %s (berth explain CODE)\n", strings.Join(codes, ", "))
	}
	fmt.Fprintf(w, "  %s\n", f.InBerth)
	if len(also) > 0 {
		ids := make([]string, 0, len(also))
		for _, a := range also[:min(len(also), maxNearest)] {
			ids = append(ids, a.ID)
		}
		fmt.Fprintf(w, "\nThe text also matches: %s.\n", strings.Join(ids, ", "))
	}
}

// explainSearch lists the codes and other systems' errors whose text holds
// every word of query; not_found when none does.
func (e *env) explainSearch(query string) error {
	var codes []berth.CodeInfo
	for _, info := range berth.Codes {
		if berth.SearchWords(info.Text(), query) {
			codes = append(codes, info)
		}
	}
	var foreign []berth.ForeignError
	for _, f := range berth.ForeignErrors {
		if berth.SearchWords(f.Text(), query) {
			foreign = append(foreign, f)
		}
	}
	if e.output == "json" {
		out := struct {
			Codes   []codeJSON    `json:"codes"`
			Foreign []foreignJSON `json:"foreign"`
		}{[]codeJSON{}, []foreignJSON{}}
		for _, c := range codes {
			out.Codes = append(out.Codes, toCodeJSON(c))
		}
		for _, f := range foreign {
			out.Foreign = append(out.Foreign, toForeignJSON(f))
		}
		return e.printJSON(out)
	}
	if len(codes)+len(foreign) == 0 {
		return berth.Errorf(berth.CodeNotFound, "no reason code or other system's error mentions %s", strings.Join(strings.Fields(query), " and ")).
			WithHint("search for fewer words, or list every code with berth explain")
	}
	if len(codes) > 0 {
		fmt.Fprintln(e.stdout, "berth reason codes:")
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, c := range codes {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Code, c.Summary)
		}
		tw.Flush()
	}
	if len(foreign) > 0 {
		if len(codes) > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintln(e.stdout, "Other systems' errors:")
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, f := range foreign {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.ID, f.System, f.Meaning)
		}
		tw.Flush()
	}
	fmt.Fprintln(e.stdout, "\nberth explain CODE shows one of them.")
	return nil
}

// fromACRDocPath is docs/from-acr.md relative to this package, for its test.
const fromACRDocPath = "../../docs/from-acr.md"

// fromACRMarkdown renders docs/from-acr.md from berth.FromACR and the
// catalogue of other systems' errors; TestFromACRDocIsCurrent keeps the file
// equal to it.
func fromACRMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString(`# Coming from Azure Container Registry

<!-- Generated from FromACR and ForeignErrors in foreign.go; do not edit. Regenerate with:
     go test ./internal/cli -run TestFromACRDocIsCurrent -update -->

Teams that push to Azure Container Registry from Azure Pipelines meet the same few
failures: a service principal secret that expired (` + "`AADSTS7000222`" + `), a secret ID pasted
where its value belongs (` + "`AADSTS7000215`" + `), a federated credential whose subject no longer
matches (` + "`AADSTS70021`" + `), and ACR's ` + "`unauthorized: authentication required`" + `, which says
nothing of which. This page maps each of them, and the fixes teams apply on Azure, to
berth, step by step. ` + "`berth explain CODE_OR_MESSAGE`" + ` prints any entry below, and
` + "`berth doctor HOST`" + ` diagnoses ACR, Docker Hub, ECR, GHCR, GitLab and Harbor registries
as well as berth.

ACR-shaped scripts keep working against berth: ` + "`POST /oauth2/exchange`" + ` (form
` + "`grant_type=access_token`" + `, ` + "`service`" + `, ` + "`access_token`" + `, optional ` + "`tenant`" + ` and
` + "`connection`" + `) answers ` + "`{\"refresh_token\": …}`" + `, ` + "`grant_type=refresh_token`" + ` on
` + "`/oauth2/token`" + ` gives access tokens, and ` + "`docker login HOST -u 00000000-0000-0000-0000-000000000000 -p REFRESH_TOKEN`" + `
logs in with it.

## Step by step
`)
	for _, s := range berth.FromACR {
		fmt.Fprintf(&b, "\n### %s\n\nOn ACR and Azure Pipelines:\n\n", s.Title)
		for i, line := range s.ACR {
			fmt.Fprintf(&b, "%d. %s\n", i+1, line)
		}
		b.WriteString("\nOn berth:\n\n")
		for i, line := range s.Berth {
			fmt.Fprintf(&b, "%d. %s\n", i+1, line)
		}
		if len(s.Errors) > 0 {
			links := make([]string, len(s.Errors))
			for i, id := range s.Errors {
				links[i] = fmt.Sprintf("[`%s`](#%s)", id, anchor(id))
			}
			fmt.Fprintf(&b, "\nErrors: %s.\n", strings.Join(links, ", "))
		}
	}
	b.WriteString("\n## Other systems' errors\n\n| error | system | meaning | berth |\n|---|---|---|---|\n")
	for _, f := range berth.ForeignErrors {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", f.ID, anchor(f.ID), f.System, mdCell(f.Meaning), codeLinks(f.Berth))
	}
	for _, f := range berth.ForeignErrors {
		fmt.Fprintf(&b, "\n### %s\n\n%s: `%s`\n\n%s\n\nUsual causes there:\n\n", f.ID, f.System, strings.ReplaceAll(f.Message, "`", "'"), f.Meaning)
		for _, c := range f.Causes {
			fmt.Fprintf(&b, "- %s\n", c)
		}
		b.WriteString("\nFixes there:\n\n")
		for _, x := range f.Fixes {
			fmt.Fprintf(&b, "- %s\n", x)
		}
		fmt.Fprintf(&b, "\nIn berth: %s", f.InBerth)
		if len(f.Berth) > 0 {
			fmt.Fprintf(&b, " Reason codes: %s.", codeLinks(f.Berth))
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// anchor is the GitHub heading anchor of id.
func anchor(id string) string { return strings.ToLower(id) }

// mdCell escapes a Markdown table cell.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// codeLinks links berth reason codes to their section of docs/errors.md.
func codeLinks(codes []berth.Code) string {
	if len(codes) == 0 {
		return "-"
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = fmt.Sprintf("[`%s`](errors.md#%s)", c, c)
	}
	return strings.Join(out, ", ")
}
