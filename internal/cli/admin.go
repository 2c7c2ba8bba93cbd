package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/audit"
	"github.com/berth-dev/berth/internal/postgres"
)

// recoveredAdminFile is where berth admin recover writes the credentials it
// made, in the data folder (or the current folder, with --db only).
const recoveredAdminFile = "recovered-admin.json"

func newAdminCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Break-glass administration on the server's own stores",
	}
	cmd.AddCommand(newAdminRecoverCommand(e))
	return cmd
}

// recoveredAdmin is what berth admin recover writes (mode 0600) and, with
// -o json, prints without the secret.
type recoveredAdmin struct {
	Name         string    `json:"name"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	SecretID     string    `json:"secret_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	File         string    `json:"file,omitempty"`
	Created      bool      `json:"created"`
	Enabled      bool      `json:"enabled"`
	Assigned     bool      `json:"assigned"`
}

func newAdminRecoverCommand(e *env) *cobra.Command {
	var (
		f         configFlags
		principal string
		out       string
		expiresIn string
	)
	const usage = "berth admin recover --data DIR | --db postgres://… [--principal admin] [--expires-in 90d] [--out FILE]"
	cmd := &cobra.Command{
		Use:   "recover --data DIR | --db URL",
		Short: "Give an owner of the registry a new secret, from the server's data folder or database",
		Long: `Recover owner access when no owner can sign in (the first admin's secret
expired, or every owner was deleted or disabled): working on the server's own
stores, not through the API, it gives the principal admin (or --principal) a
new secret, creating the principal again if it was deleted, enabling it if it
was disabled, and making it owner of the registry if it no longer is.

It needs what only an operator of the server has: the data folder (--data
DIR) or the database (--db postgres://… with BERTH_KEY_ENCRYPTION_KEY). The
credentials go to a file of mode 0600 (DIR/recovered-admin.json, or
./recovered-admin.json with --db; --out FILE to choose), never to the
terminal, and the recovery is recorded in the audit log. A running server
accepts the new secret within a second.`,
		Args: argsExactly(0, usage),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !e.localStores(cmd) {
				return berth.Errorf(berth.CodeInvalid, "berth admin recover works on the server's own stores, and neither --data nor --db names them").
					WithHint("%s", usage)
			}
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			lifetime, err := berth.ParseLifetime(expiresIn, cfg.Auth.MaxSecretLifetime)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			logger := newLogger(cfg.Log, e.stderr)
			st, err := openExisting(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer st.Close()
			hasher, err := st.pepper(ctx, cfg.Data)
			if err != nil {
				return err
			}
			if out == "" {
				out = recoveredPath(cfg)
			}
			r, err := berth.PlanRecovery(ctx, st.meta, rand.Reader, hasher, principal, time.Now(), lifetime)
			if err != nil {
				return err
			}
			rec := recoveredAdmin{Name: r.Principal.Name, ClientID: r.Principal.ClientID, ClientSecret: r.Value.Reveal(),
				SecretID: r.Secret.ID, ExpiresAt: r.Secret.Expires.UTC(), Created: r.Created, Enabled: r.Enabled, Assigned: r.Assigned}
			// The credentials are saved before they exist: a failure after
			// this leaves a file that does not work, never a secret lost.
			b, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, append(b, '\n')); err != nil {
				return err
			}
			if err := r.Apply(ctx, st.meta); err != nil {
				return err
			}
			if err := auditRecovery(ctx, st, rec, out); err != nil {
				return err
			}
			if st.replica != nil { // replicas drop what they cached of the principal
				if err := st.replica.DB.Notify(ctx, postgres.PayloadState); err != nil {
					logger.Warn("notify the replicas of the recovery; they see it within a second anyway", slog.Any("err", err))
				}
			}
			rec.ClientSecret, rec.File = "", out
			if e.output == "json" {
				return e.printJSON(rec)
			}
			var did []string
			if r.Created {
				did = append(did, "created it again")
			}
			if r.Enabled {
				did = append(did, "enabled it")
			}
			if r.Assigned {
				did = append(did, "made it owner of the registry")
			}
			fmt.Fprintf(e.stdout, "Gave principal %s (client id %s) a new secret, valid until %s", rec.Name, rec.ClientID, formatTime(rec.ExpiresAt))
			if len(did) > 0 {
				fmt.Fprintf(e.stdout, "; %s", joinAnd(did))
			}
			fmt.Fprintf(e.stdout, ".\nIts credentials are in %s (mode 0600); the secret is not shown here.\n", out)
			fmt.Fprintf(e.stdout, "Use them, then give the registry a lasting owner:\n  export BERTH_URL=%s BERTH_CLIENT_ID=%s BERTH_CLIENT_SECRET=\"$(jq -r .client_secret %s)\"\n  berth secret list %s\n",
				recoverURL(cfg), rec.ClientID, out, rec.Name)
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&principal, "principal", berth.AdminName, "the principal to recover: created if missing, enabled and made owner of the registry if needed")
	cmd.Flags().StringVar(&expiresIn, "expires-in", "90d", "the new secret's lifetime")
	cmd.Flags().StringVar(&out, "out", "", "the file to write the credentials to, mode 0600 (default DATA/recovered-admin.json, or ./recovered-admin.json with --db)")
	return cmd
}

// recoveredPath is where berth admin recover writes by default: in the data
// folder on SQLite, or on PostgreSQL when it exists there, else here.
func recoveredPath(cfg Config) string {
	if fi, err := os.Stat(cfg.Data); !cfg.Postgres() || (err == nil && fi.IsDir()) {
		return filepath.Join(cfg.Data, recoveredAdminFile)
	}
	return recoveredAdminFile
}

// auditRecovery records the recovery in the audit log, by the operator of
// the stores (no principal acted).
func auditRecovery(ctx context.Context, st *served, rec recoveredAdmin, file string) error {
	w := audit.New(st.meta, audit.Options{})
	ev := operatorEvent(ctx, "break-glass", berth.AuditAdminRecover, rec.Name, map[string]string{"secret_id": rec.SecretID, "file": file,
		"created": strconv.FormatBool(rec.Created), "enabled": strconv.FormatBool(rec.Enabled), "assigned": strconv.FormatBool(rec.Assigned)})
	ev.CredentialID = rec.SecretID
	w.Record(ev)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return w.Close(cctx)
}

// recoverURL is the server's address for the commands berth admin recover
// prints: its url, else its listen address when that is loopback (over
// https when it serves TLS), else a placeholder to fill in.
func recoverURL(cfg Config) string {
	if cfg.URL != "" {
		return cfg.URL
	}
	if cfg.Postgres() {
		// Run beside the replicas' database, not as one of them: this
		// process's listen address says nothing of theirs.
		return "https://REGISTRY"
	}
	if host, _, err := net.SplitHostPort(cfg.Addr); err == nil && berth.IsLoopbackHost(host) {
		if cfg.TLS.CertFile != "" || len(cfg.TLS.ACME.Domains) > 0 {
			return "https://" + cfg.Addr
		}
		return "http://" + cfg.Addr
	}
	return "https://REGISTRY"
}
