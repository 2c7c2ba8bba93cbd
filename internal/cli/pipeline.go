package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newPipelineCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Register the CI pipelines berth trusts, by their OIDC ID tokens",
		Long: `Register CI pipelines: workload identities that berth trusts. A pipeline is an
OIDC issuer (GitHub Actions, GitLab, Azure Pipelines, a Kubernetes cluster)
and conditions on the ID tokens it mints: the subject, the audience and other
claims, where * stands for any run of characters. A pipeline proves nothing by
itself; it reaches the registry through a service connection that permits it
(berth connection authorize). Managing pipelines needs the role owner on
registry.`,
	}
	cmd.AddCommand(pipelineCreateCommand(e), pipelineListCommand(e), pipelineShowCommand(e), pipelineUpdateCommand(e), pipelineDeleteCommand(e))
	return cmd
}

func pipelineCreateCommand(e *env) *cobra.Command {
	var req api.CreatePipelineRequest
	var claims []string
	var jwksFile, github, gitlab, gitlabURL, azure, kubernetes, kubernetesNS, entra string
	usage := "berth pipeline create NAME (--issuer URL --subject PATTERN | --github OWNER/REPO | --gitlab GROUP/PROJECT | --azure-devops ORG/PROJECT/CONNECTION --issuer URL | --kubernetes NAMESPACE/NAME --issuer URL | --kubernetes-namespace NAMESPACE --issuer URL | --entra TENANT/APP_OR_OBJECT_ID) [--audience A] [--claim K=PATTERN]… [--jwks-file F]"
	cmd := &cobra.Command{
		Use:   "create NAME (--issuer URL --subject PATTERN | PRESET) [--audience A] [--claim K=PATTERN]… [--jwks-file F]",
		Short: "Register a pipeline: an OIDC issuer and conditions on its ID tokens",
		Long: `Register a pipeline. Give its issuer and subject pattern outright, or use a
preset that fills them for a CI system:

  --github OWNER/REPO              any workflow of the repository
  --github OWNER/REPO@REF          a branch (main, refs/heads/main) or a tag (refs/tags/v*)
  --github OWNER/REPO:environment:ENV   jobs that use a deployment environment
  --gitlab GROUP/PROJECT[@REF]     with --gitlab-url for a self-managed GitLab
  --azure-devops ORG/PROJECT/CONNECTION --issuer https://vstoken.dev.azure.com/ORG_ID
  --kubernetes NAMESPACE/SERVICEACCOUNT --issuer https://kubernetes.default.svc.cluster.local
  --kubernetes-namespace NAMESPACE --issuer …   every service account of the namespace
  --entra TENANT/APP_OR_OBJECT_ID  an Entra ID service principal or managed identity, by
                                   its application (client) id or object id (oid, appid,
                                   azp or sub); issuer https://login.microsoftonline.com/TENANT/v2.0,
                                   or --issuer https://sts.windows.net/TENANT/ for v1.0 tokens

The Kubernetes presets also check the token's kubernetes.io claim (the
namespace, and the service account's name), as the API server writes it in
the tokens it mints for pods and for the kubelet; --claim
kubernetes.io.serviceaccount.uid=UID pins one service account, so that one
deleted and created again under the same name is not trusted.

--audience is the aud the token must hold (default: the registry's service
name); --claim adds a condition on any other claim and may be repeated.
--jwks-file gives the issuer's key set (its JWKS document) for issuers berth
cannot reach, such as an air-gapped cluster.`,
		Example: `  berth pipeline create web-main --github org/web@main
  berth pipeline create web-prod --github org/web:environment:production
  berth pipeline create api --gitlab group/api@main --gitlab-url https://gitlab.example.com
  berth pipeline create deploy --issuer https://token.actions.githubusercontent.com \
      --subject 'repo:org/web:ref:refs/heads/*' --claim workflow=deploy
  berth pipeline create builder --kubernetes ci/builder \
      --issuer https://kubernetes.default.svc.cluster.local --jwks-file cluster-jwks.json
  berth pipeline create acr-push --entra 72f988bf-86f1-41af-91ab-2d7cd011db47/5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a \
      --audience api://berth-registry`,
		Args: argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			presets := 0
			for _, p := range []struct{ name, spec string }{
				{berth.PresetGitHub, github}, {berth.PresetGitLab, gitlab}, {berth.PresetAzureDevOps, azure}, {berth.PresetKubernetes, kubernetes},
				{berth.PresetKubernetesNamespace, kubernetesNS},
				{berth.PresetEntra, entra},
			} {
				if p.spec != "" {
					req.Preset, req.Spec = p.name, p.spec
					presets++
				}
			}
			switch {
			case presets > 1:
				return berth.Errorf(berth.CodeInvalid, "more than one preset was given; a pipeline is one CI system").WithHint("%s", usage)
			case gitlabURL != "" && req.Preset != berth.PresetGitLab:
				return berth.Errorf(berth.CodeInvalid, "--gitlab-url goes with --gitlab").WithHint("berth pipeline create %s --gitlab GROUP/PROJECT --gitlab-url %s", req.Name, gitlabURL)
			case gitlabURL != "" && req.Issuer != "":
				return berth.Errorf(berth.CodeInvalid, "--gitlab-url is the issuer; give it or --issuer, not both").WithHint("drop --issuer")
			case presets == 0 && (req.Issuer == "" || req.Subject == ""):
				return berth.Errorf(berth.CodeInvalid, "a pipeline needs --issuer and --subject, or a preset").WithHint("%s", usage)
			}
			if gitlabURL != "" {
				req.Issuer = gitlabURL
			}
			if len(claims) > 0 {
				req.Claims = map[string]string{}
				for _, c := range claims {
					k, v, ok := strings.Cut(c, "=")
					if !ok || k == "" {
						return berth.Errorf(berth.CodeInvalid, "--claim %q is not NAME=PATTERN", c).WithHint("--claim ref_protected=true")
					}
					if _, dup := req.Claims[k]; dup {
						return berth.Errorf(berth.CodeInvalid, "--claim %s is given twice", k).WithHint("give each claim once; a pattern may hold *")
					}
					req.Claims[k] = v
				}
			}
			if jwksFile != "" {
				b, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				req.JWKS = b
			}
			return e.withClient(func(c *client.Client) error {
				p, err := c.CreatePipeline(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				fmt.Fprintf(e.stdout, "Registered pipeline %s\n", p.Name)
				printPipeline(e, p)
				fmt.Fprintf(e.stderr, "It reaches the registry through a connection that permits it:\n  berth connection authorize CONNECTION --pipeline %s\n", p.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Issuer, "issuer", "", "the issuer URL, exactly as the token's iss (https, or http on loopback)")
	f.StringVar(&req.Subject, "subject", "", "a pattern on the token's sub; * matches any run of characters")
	f.StringVar(&req.Audience, "audience", "", "the aud the token must hold (default: the registry's service name)")
	f.StringArrayVar(&claims, "claim", nil, "a condition NAME=PATTERN on another claim; repeatable")
	f.StringVar(&jwksFile, "jwks-file", "", "the issuer's JWKS document, for an issuer berth cannot reach")
	f.StringVar(&github, "github", "", "GitHub Actions preset: OWNER/REPO[@REF|:environment:ENV]")
	f.StringVar(&gitlab, "gitlab", "", "GitLab CI preset: GROUP/PROJECT[@REF]")
	f.StringVar(&gitlabURL, "gitlab-url", "", "the GitLab URL, for a self-managed GitLab (default https://gitlab.com)")
	f.StringVar(&azure, "azure-devops", "", "Azure Pipelines preset: ORG/PROJECT/CONNECTION (needs --issuer)")
	f.StringVar(&kubernetes, "kubernetes", "", "Kubernetes service account preset: NAMESPACE/NAME (needs --issuer)")
	f.StringVar(&entra, "entra", "", "Entra ID preset: TENANT/APP_OR_OBJECT_ID, for tokens exchanged at /oauth2/exchange")
	f.StringVar(&kubernetesNS, "kubernetes-namespace", "", "Kubernetes preset for every service account of a namespace: NAMESPACE (needs --issuer)")
	return cmd
}

func printPipeline(e *env, p berth.Pipeline) {
	fmt.Fprintf(e.stdout, "  issuer:    %s\n  subject:   %s\n", p.Issuer, p.Subject)
	aud := p.Audience
	if aud == "" {
		aud = "(the registry's service name)"
	}
	fmt.Fprintf(e.stdout, "  audience:  %s\n", aud)
	keys := make([]string, 0, len(p.Claims))
	for k := range p.Claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "  claim:     %s=%s\n", k, p.Claims[k])
	}
	if p.JWKS != nil {
		fmt.Fprintln(e.stdout, "  keys:      registered with the pipeline (--jwks-file)")
	}
	if p.Preset != "" {
		fmt.Fprintf(e.stdout, "  preset:    %s\n", p.Preset)
	}
}

func pipelineListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registered pipelines",
		Args:  argsExactly(0, "berth pipeline list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				ps, err := c.ListPipelines(cmd.Context())
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ps)
				}
				if len(ps) == 0 {
					fmt.Fprintln(e.stderr, "No pipelines are registered (berth pipeline create NAME --github OWNER/REPO registers one).")
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "NAME\tISSUER\tSUBJECT\tAUDIENCE\tCREATED")
				for _, p := range ps {
					aud := p.Audience
					if aud == "" {
						aud = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Issuer, p.Subject, aud, formatTime(p.Created))
				}
				return tw.Flush()
			})
		},
	}
}

func pipelineShowCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a pipeline and the connections that permit it",
		Args:  argsExactly(1, "berth pipeline show NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				p, err := c.GetPipeline(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				fmt.Fprintf(e.stdout, "pipeline %s (id %s, created %s)\n", p.Name, p.ID, formatTime(p.Created))
				printPipeline(e, p.Pipeline)
				if len(p.Connections) == 0 {
					fmt.Fprintf(e.stdout, "  permitted on no connection (berth connection authorize CONNECTION --pipeline %s)\n", p.Name)
				} else {
					fmt.Fprintf(e.stdout, "  permitted: %s\n", strings.Join(p.Connections, ", "))
				}
				return nil
			})
		},
	}
}

func pipelineUpdateCommand(e *env) *cobra.Command {
	var jwksFile string
	var published bool
	cmd := &cobra.Command{
		Use:   "update NAME… (--jwks-file F | --published-keys)",
		Short: "Replace the key set pipelines pin (an issuer's key rotation); their permissions stay",
		Long: `update replaces the key set each named pipeline verifies its issuer's tokens
with: --jwks-file for an issuer berth cannot reach (a cluster's API server),
after the issuer rotated its signing key, or --published-keys to use the
issuer's published keys again. The pipelines keep their ids, so every
connection that permits them still does. A key set pinned for one pipeline
never vouches for another: name every pipeline of the issuer.`,
		Example: `  kubectl get --raw /openid/v1/jwks > cluster-jwks.json
  berth pipeline update apps apps-web --jwks-file cluster-jwks.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (jwksFile == "") == !published {
				return berth.Errorf(berth.CodeInvalid, "give --jwks-file F or --published-keys").
					WithHint("berth pipeline update %s --jwks-file cluster-jwks.json", strings.Join(args, " "))
			}
			var jwks json.RawMessage
			if jwksFile != "" {
				b, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				jwks = b
			}
			return e.withClient(func(c *client.Client) error {
				var done []berth.Pipeline
				for _, name := range args {
					p, err := c.SetPipelineKeys(cmd.Context(), name, jwks)
					if err != nil {
						return err
					}
					done = append(done, p)
					if e.output != "json" {
						keys := "the issuer's published keys"
						if p.JWKS != nil {
							keys = "the key set of " + jwksFile
						}
						fmt.Fprintf(e.stdout, "Pipeline %s verifies with %s\n", p.Name, keys)
					}
				}
				if e.output == "json" {
					return e.printJSON(done)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&jwksFile, "jwks-file", "", "the issuer's JWKS document, for an issuer berth cannot reach")
	cmd.Flags().BoolVar(&published, "published-keys", false, "use the issuer's published keys (its discovery document) again")
	return cmd
}

func pipelineDeleteCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"remove"},
		Short:   "Delete a pipeline and its permissions on every connection",
		Args:    argsExactly(1, "berth pipeline delete NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				p, err := c.DeletePipeline(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				fmt.Fprintf(e.stdout, "Deleted pipeline %s", p.Name)
				if len(p.Connections) > 0 {
					fmt.Fprintf(e.stdout, "; it is no longer permitted on %s", strings.Join(p.Connections, ", "))
				}
				fmt.Fprintln(e.stdout)
				return nil
			})
		},
	}
}

// readJWKSFile reads the --jwks-file of pipeline create and update.
func readJWKSFile(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "cannot read --jwks-file: %v", err).
			WithHint("save the issuer's key set to a file first, as for a cluster: kubectl get --raw /openid/v1/jwks > cluster-jwks.json, then --jwks-file cluster-jwks.json")
	}
	return b, nil
}
