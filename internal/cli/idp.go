package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newIdPCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "idp",
		Short: "Add the identity providers people sign in through (OpenID Connect)",
		Long: `Identity providers are the company's OpenID Connect providers (Microsoft Entra
ID, Keycloak, Dex, Okta, Google, GitLab) through which people sign in: in the
browser at /login, and with berth login HOST (device login). A person's first
sign-in creates a principal of kind user; their groups (the groups claim) can
hold roles: berth role assign --group IDP:GROUP --role R --scope S.

Register berth at the provider as a web application whose redirect URI is
URL/login/callback (berth idp show NAME prints it). Client secrets are stored
sealed by the key encryption key and never shown again. Managing providers
needs the role owner on registry.`,
	}
	cmd.AddCommand(idpAddCommand(e), idpListCommand(e), idpShowCommand(e), idpRemoveCommand(e))
	return cmd
}

func idpAddCommand(e *env) *cobra.Command {
	var req api.IdPRequest
	var secretStdin bool
	var scopes string
	usage := "berth idp add NAME --issuer URL --client-id ID --client-secret-stdin [--groups-claim groups] [--username-claim preferred_username] [--scopes \"openid profile email groups\"]"
	cmd := &cobra.Command{
		Use:   "add NAME --issuer URL --client-id ID --client-secret-stdin",
		Short: "Add an identity provider; the client secret is read from stdin",
		Example: `  berth idp add corp --issuer https://login.microsoftonline.com/TENANT/v2.0 \
      --client-id 5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a --client-secret-stdin < secret
  berth idp add sso --issuer https://keycloak.example.com/realms/corp --client-id berth \
      --client-secret-stdin --scopes "openid profile email" < secret`,
		Args: argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			for _, f := range []struct{ name, value string }{{"issuer", req.Issuer}, {"client-id", req.ClientID}} {
				if err := requireFlag(f.name, f.value, usage); err != nil {
					return err
				}
			}
			if !secretStdin {
				return berth.Errorf(berth.CodeInvalid, "the client secret is read from stdin only, never from the command line").WithHint("%s < secret-file", usage)
			}
			line, err := readStdinLine(cmd.InOrStdin(), "the client secret", usage)
			if err != nil {
				return err
			}
			req.ClientSecret = strings.TrimSpace(line)
			if scopes != "" {
				req.Scopes = strings.Fields(scopes)
			}
			return e.withClient(func(c *client.Client) error {
				p, err := c.AddIdP(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				fmt.Fprintf(e.stdout, "Added identity provider %s (%s)\n", p.Name, p.Issuer)
				fmt.Fprintf(e.stdout, "  redirect URI to register at the provider: %s\n  people sign in at: %s\n", p.RedirectURI, p.SignInURL)
				fmt.Fprintf(e.stderr, "Give its groups roles: berth role assign --group %s:GROUP --role pull --scope NAMESPACE/*\n", p.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Issuer, "issuer", "", "the provider's issuer URL, exactly as its ID tokens' iss (https; http on loopback only)")
	f.StringVar(&req.ClientID, "client-id", "", "the client id the provider gave berth's application")
	f.BoolVar(&secretStdin, "client-secret-stdin", false, "read the application's client secret from stdin")
	f.StringVar(&req.GroupsClaim, "groups-claim", "", "the ID token claim that lists the person's groups (default groups)")
	f.StringVar(&req.UsernameClaim, "username-claim", "", "the ID token claim berth names the person's principal after (default preferred_username)")
	f.StringVar(&scopes, "scopes", "", `the scopes to ask for, space separated (default "openid profile email groups")`)
	return cmd
}

func printIdP(e *env, p api.IdP) {
	fmt.Fprintf(e.stdout, "name:           %s\nissuer:         %s\nclient id:      %s\ngroups claim:   %s\nusername claim: %s\nscopes:         %s\nredirect URI:   %s\nsign in at:     %s\ncreated:        %s\n",
		p.Name, p.Issuer, p.ClientID, p.GroupsClaim, p.UsernameClaim, strings.Join(p.Scopes, " "), p.RedirectURI, p.SignInURL, formatTime(p.Created))
}

func idpListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the identity providers",
		Args:  argsExactly(0, "berth idp list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				ps, err := c.ListIdPs(cmd.Context())
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ps)
				}
				if len(ps) == 0 {
					fmt.Fprintln(e.stderr, "No identity provider: berth idp add NAME --issuer URL --client-id ID --client-secret-stdin")
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "NAME\tISSUER\tCLIENT ID\tCREATED")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Issuer, p.ClientID, formatTime(p.Created))
				}
				return tw.Flush()
			})
		},
	}
}

func idpShowCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an identity provider (never its client secret)",
		Args:  argsExactly(1, "berth idp show NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				p, err := c.GetIdP(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				printIdP(e, p)
				return nil
			})
		},
	}
}

func idpRemoveCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"delete"},
		Short:   "Remove an identity provider: its people's sessions end; their principals stay",
		Args:    argsExactly(1, "berth idp remove NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				p, err := c.RemoveIdP(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(p)
				}
				fmt.Fprintf(e.stdout, "Removed identity provider %s; the sessions it started have ended (berth principal list --kind user shows its people)\n", p.Name)
				return nil
			})
		},
	}
}
