package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

// outputYAML is the annotation of a command that prints YAML for -o yaml.
const outputYAML = "berth.dev/output-yaml"

func newPullSecretCommand(e *env) *cobra.Command {
	var req api.PullSecretRequest
	const usage = "berth pull-secret NAME (--connection C | --principal P) [--namespace NS] [--expires-in 90d] [--registry HOST] [-o yaml|json]"
	cmd := &cobra.Command{
		Use:   "pull-secret NAME (--connection C | --principal P) [--namespace NS] [--expires-in 90d]",
		Short: "Print a Kubernetes image pull secret whose credential berth tracks",
		Long: `pull-secret adds a client secret to the principal of --connection (or to
--principal) and prints it as a kubernetes.io/dockerconfigjson Secret named NAME,
for clusters whose kubelet cannot use berth kubelet-credential-provider:

  berth pull-secret berth-pull --connection cluster --namespace apps | kubectl apply -f -

The secret is tracked like any other: berth secret list --expiring-within 30d
lists it (its description names the pull secret), the secret.expiring webhooks
and the berth_secret_expiry_timestamp_seconds metric announce its expiry, and
the manifest carries the annotations berth.dev/expires-at and berth.dev/secret-id.
Renew it before then by running the command again and applying the new manifest,
then remove the old secret (berth secret remove PRINCIPAL SECRET_ID).

The manifest goes to stdout in YAML (text and -o yaml) or JSON (-o json: the
Secret itself, with Kubernetes' field names), a summary to stderr. Its registry
is the host pods name images by: --registry, else the server's public host.
It needs the role owner on registry.`,
		Example: `  berth pull-secret berth-pull --connection cluster --namespace apps --expires-in 30d | kubectl apply -f -
  berth pull-secret ci-pull --principal ci-puller -o json > secret.json`,
		Annotations: map[string]string{outputYAML: "true"},
		Args:        argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			return e.withClient(func(c *client.Client) error {
				ps, err := c.CreatePullSecret(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					if err := e.printJSON(ps.Manifest); err != nil {
						return err
					}
				} else {
					enc := yaml.NewEncoder(e.stdout)
					enc.SetIndent(2)
					if err := enc.Encode(ps.Manifest); err != nil {
						return fmt.Errorf("encode the manifest: %w", err)
					}
					if err := enc.Close(); err != nil {
						return fmt.Errorf("encode the manifest: %w", err)
					}
				}
				s := ps.Secret
				fmt.Fprintf(e.stderr, "Added secret %s… (id %s) to principal %s for %s; it expires at %s, in %s.\n",
					s.Hint, s.ID, s.Principal, ps.Registry, formatTime(s.Expires), berth.FormatLifetime(s.Expires.Sub(s.Created)))
				fmt.Fprintf(e.stderr, "Renew it before then (berth secret list --expiring-within 30d lists it): run this command again, apply the new manifest, then berth secret remove %s %s.\n",
					s.Principal, s.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Connection, "connection", "", "the service connection whose principal the secret belongs to")
	f.StringVar(&req.Principal, "principal", "", "the principal the secret belongs to")
	f.StringVar(&req.Namespace, "namespace", "", "the Secret's namespace (default: kubectl's current namespace)")
	f.StringVar(&req.ExpiresIn, "expires-in", "", "lifetime: a positive duration such as 30d or 12h (default 90d, or the server's maximum when shorter)")
	f.StringVar(&req.Registry, "registry", "", "the registry host[:port] that pods name images by (default: the server's public host)")
	return cmd
}
