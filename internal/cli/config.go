package cli

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth"
)

// Config is berth's whole configuration, validated. It is read from the
// defaults, then the YAML file, then BERTH_* variables, then flags; each
// later source wins.
type Config struct {
	Addr string `yaml:"addr"`
	Data string `yaml:"data"`
	// DB selects the metadata store of berth serve: empty for SQLite under
	// Data, or a postgres:// URL shared by every replica. It may hold a
	// password: log it only through RedactDSN.
	DB string `yaml:"db"`
	// KeyEncryptionKey, base64 of 32 bytes, encrypts (AES-256-GCM) what
	// replicas share through PostgreSQL that must stay secret: the private
	// signing keys and the secret-hashing pepper. Required with a postgres DB.
	KeyEncryptionKey string `yaml:"key_encryption_key"`
	// Blobs selects the blob store: empty for the storage folder under Data,
	// or an s3:// URL (see s3.ParseURL) shared by every replica. Its
	// credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	Blobs string `yaml:"blobs"`
	// URL is the registry's public base URL, the token realm and issuer it
	// announces; empty means the URL each request came to.
	URL  string     `yaml:"url"`
	Log  LogConfig  `yaml:"log"`
	GC   GCConfig   `yaml:"gc"`
	Auth AuthConfig `yaml:"auth"`
	// Audit keeps the audit log for Retention; 0 keeps it for ever.
	Audit AuditConfig `yaml:"audit"`
	// Federation tunes the exchange of CI ID tokens.
	Federation FederationConfig `yaml:"federation"`
	// Webhooks schedules the events berth looks for rather than meets:
	// secret expiry and connection verification.
	Webhooks WebhooksConfig `yaml:"webhooks"`
	// MaxManifestSize bounds a manifest body in bytes.
	MaxManifestSize int64 `yaml:"max_manifest_size"`
	// ShutdownTimeout bounds how long requests in flight may finish on stop.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLS serves HTTPS (tls.go): certificate files, or ACME.
	TLS TLSConfig `yaml:"tls"`
	// Limits bound what requests without credentials may hold.
	Limits LimitsConfig `yaml:"limits"`
	// Outbound says which addresses berth may call (webhooks, issuers).
	Outbound OutboundConfig `yaml:"outbound"`
	// IdentityProviders are added (or brought up to date) at every start,
	// as berth idp add would: people sign in through them.
	IdentityProviders []IdPConfig `yaml:"identity_providers"`
}

// IdPConfig is one identity provider of the configuration file. Its client
// secret is read from a file (client_secret_file) or an environment variable
// (client_secret_env), never written in the configuration itself.
type IdPConfig struct {
	Name             string   `yaml:"name"`
	Issuer           string   `yaml:"issuer"`
	ClientID         string   `yaml:"client_id"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	ClientSecretEnv  string   `yaml:"client_secret_env"`
	GroupsClaim      string   `yaml:"groups_claim"`
	UsernameClaim    string   `yaml:"username_claim"`
	Scopes           []string `yaml:"scopes"`
}

// LimitsConfig bounds what a request may hold before it proved a
// credential. UnauthenticatedConnections is how many connections one source
// address may keep open on which no request authenticated yet (0: the
// default, 64); behind a proxy or load balancer every connection comes from
// its address, so raise it there.
type LimitsConfig struct {
	UnauthenticatedConnections int `yaml:"unauthenticated_connections_per_address"`
}

// OutboundConfig: AllowPrivate lets webhooks and OIDC issuers (and the key
// sets they name) be at private, link-local and shared addresses, which berth
// otherwise refuses so that a registered URL cannot reach the metadata
// service or the internal network. Loopback is always allowed.
type OutboundConfig struct {
	AllowPrivate bool `yaml:"allow_private"`
}

// LogConfig selects the log level (debug, info, warn, error) and format
// (text or json).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// GCConfig schedules garbage collection inside berth serve. An Interval of 0
// turns the schedule off.
type GCConfig struct {
	Interval time.Duration `yaml:"interval"`
	Grace    time.Duration `yaml:"grace"`
}

// AuthConfig tunes the identity provider.
type AuthConfig struct {
	// Service is the audience of access tokens, the Docker token "service".
	Service string `yaml:"service"`
	// TokenLifetime is the lifetime of access tokens.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// MaxSecretLifetime bounds what berth secret add --expires-in may ask.
	MaxSecretLifetime time.Duration `yaml:"max_secret_lifetime"`
	// MaxTokenLifetime bounds a personal access token's lifetime.
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"`
	// UserSessionLifetime bounds a person's sign-in, in the browser and in
	// the CLI (device login).
	UserSessionLifetime time.Duration `yaml:"user_session_lifetime"`
	// OwnerGroups are groups PROVIDER:GROUP made owner on registry at
	// start, so that people manage a fresh deployment from minute one.
	OwnerGroups []string `yaml:"owner_groups"`
}

// FederationConfig tunes federated logins: SessionLifetime is how long the
// refresh token that a CI ID token is exchanged for lasts, so that one
// short-lived CI token carries a long job.
type FederationConfig struct {
	SessionLifetime time.Duration `yaml:"session_lifetime"`
}

// WebhooksConfig sets how often berth serve looks for secrets nearing or
// past their expiry and verifies every connection (secret.expiring,
// secret.expired, connection.verify_failed).
type WebhooksConfig struct {
	ScheduleInterval time.Duration `yaml:"schedule_interval"`
}

// AuditConfig sets how long audit events are kept.
type AuditConfig struct {
	Retention time.Duration `yaml:"retention"`
}

func defaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:5000",
		Data: "./berth-data",
		Log:  LogConfig{Level: "info", Format: "text"},
		GC:   GCConfig{Interval: time.Hour, Grace: berth.DefaultGCGrace},
		Auth: AuthConfig{
			Service:             "berth",
			TokenLifetime:       berth.DefaultAccessTokenLifetime,
			MaxSecretLifetime:   berth.DefaultMaxSecretLifetime,
			UserSessionLifetime: berth.DefaultUserSessionLifetime,
			MaxTokenLifetime:    berth.DefaultMaxPATLifetime,
		},
		Audit:           AuditConfig{Retention: 90 * 24 * time.Hour},
		Federation:      FederationConfig{SessionLifetime: berth.DefaultSessionLifetime},
		Webhooks:        WebhooksConfig{ScheduleInterval: 15 * time.Minute},
		MaxManifestSize: 4 << 20,
		ShutdownTimeout: 30 * time.Second,
	}
}

// configFlags are the flags every command that reads the configuration takes:
// all of them work on the stores --db (or the data folder) names.
type configFlags struct {
	file, addr, data, db string
	blobs                string
	tlsCert, tlsKey      string // berth serve only
}

func (f *configFlags) register(fs *pflag.FlagSet, withAddr bool) {
	fs.StringVar(&f.file, "config", "", "YAML configuration file (env BERTH_CONFIG)")
	fs.StringVar(&f.data, "data", "", "data folder (env BERTH_DATA; default ./berth-data)")
	fs.StringVar(&f.db, "db", "", "metadata database: postgres://USER@HOST/DB (env BERTH_DB; default SQLite in the data folder)")
	fs.StringVar(&f.blobs, "blobs", "", "blob store: s3://BUCKET?endpoint=HOST:PORT&region=R[&presign=true] (env BERTH_BLOBS; default the storage folder in the data folder)")
	if withAddr {
		fs.StringVar(&f.addr, "addr", "", "listen address (env BERTH_ADDR; default 127.0.0.1:5000)")
		fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, reloaded when it changes (env BERTH_TLS_CERT)")
		fs.StringVar(&f.tlsKey, "tls-key", "", "the PEM private key of --tls-cert (env BERTH_TLS_KEY)")
	}
}

// loadConfig builds the configuration from its four sources and validates it.
func loadConfig(f configFlags, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	path := f.file
	if path == "" {
		path = getenv("BERTH_CONFIG")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, berth.Errorf(berth.CodeInvalid, "cannot read configuration file %s: %v", path, errors.Unwrap(err))
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, berth.Errorf(berth.CodeInvalid, "configuration file %s: %v", path, err).
				WithHint("compare the file with the keys in docs/configuration.md; unknown keys are refused so that a typo is never ignored")
		}
	}
	for _, o := range []struct {
		flag, env string
		dst       *string
	}{{f.addr, "BERTH_ADDR", &cfg.Addr}, {f.data, "BERTH_DATA", &cfg.Data}, {f.db, "BERTH_DB", &cfg.DB},
		{"", "BERTH_KEY_ENCRYPTION_KEY", &cfg.KeyEncryptionKey}, {f.blobs, "BERTH_BLOBS", &cfg.Blobs},
		{f.tlsCert, "BERTH_TLS_CERT", &cfg.TLS.CertFile}, {f.tlsKey, "BERTH_TLS_KEY", &cfg.TLS.KeyFile}} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	switch {
	case c.Addr == "":
		return berth.Errorf(berth.CodeInvalid, "addr is empty").WithHint("berth serve --addr 127.0.0.1:5000")
	case c.Data == "":
		return berth.Errorf(berth.CodeInvalid, "data is empty").WithHint("berth serve --data ./berth-data")
	case c.Log.Level != "debug" && c.Log.Level != "info" && c.Log.Level != "warn" && c.Log.Level != "error":
		return berth.Errorf(berth.CodeInvalid, "log.level %q is not debug, info, warn or error", c.Log.Level)
	case c.Log.Format != "text" && c.Log.Format != "json":
		return berth.Errorf(berth.CodeInvalid, "log.format %q is not text or json", c.Log.Format)
	case c.GC.Interval < 0 || c.GC.Grace < 0:
		return berth.Errorf(berth.CodeInvalid, "gc.interval and gc.grace must not be negative")
	case c.MaxManifestSize < 4<<20:
		return berth.Errorf(berth.CodeInvalid, "max_manifest_size %d is below the 4 MiB the distribution spec requires", c.MaxManifestSize)
	case c.Audit.Retention < 0:
		return berth.Errorf(berth.CodeInvalid, "audit.retention must not be negative (0 keeps the audit log for ever)")
	case c.Auth.Service == "":
		return berth.Errorf(berth.CodeInvalid, "auth.service is empty: it names this registry in tokens")
	case c.Auth.TokenLifetime < time.Minute || c.Auth.TokenLifetime > 24*time.Hour:
		return berth.Errorf(berth.CodeInvalid, "auth.token_lifetime %s is outside 1m to 24h", c.Auth.TokenLifetime)
	case c.Auth.MaxSecretLifetime <= 0:
		return berth.Errorf(berth.CodeInvalid, "auth.max_secret_lifetime must be positive")
	case c.Federation.SessionLifetime < c.Auth.TokenLifetime || c.Federation.SessionLifetime > 7*24*time.Hour:
		return berth.Errorf(berth.CodeInvalid, "federation.session_lifetime %s is outside auth.token_lifetime (%s) to 7 days", c.Federation.SessionLifetime, c.Auth.TokenLifetime).
			WithHint("federation.session_lifetime: 6h is the default; make it the length of your longest CI job")
	case c.Auth.MaxTokenLifetime <= 0:
		return berth.Errorf(berth.CodeInvalid, "auth.max_token_lifetime must be positive").WithHint("auth.max_token_lifetime: 8760h is the default")
	case c.Auth.UserSessionLifetime < c.Auth.TokenLifetime || c.Auth.UserSessionLifetime > 30*24*time.Hour:
		return berth.Errorf(berth.CodeInvalid, "auth.user_session_lifetime %s is outside auth.token_lifetime (%s) to 30 days", c.Auth.UserSessionLifetime, c.Auth.TokenLifetime).
			WithHint("auth.user_session_lifetime: 12h is the default")
	case c.Webhooks.ScheduleInterval < time.Minute || c.Webhooks.ScheduleInterval > 24*time.Hour:
		return berth.Errorf(berth.CodeInvalid, "webhooks.schedule_interval %s is outside 1m to 24h", c.Webhooks.ScheduleInterval).
			WithHint("webhooks.schedule_interval: 15m is the default")
	case c.URL != "" && !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://"):
		return berth.Errorf(berth.CodeInvalid, "url %q is not an http(s) URL", c.URL)
	case c.ShutdownTimeout <= 0:
		return berth.Errorf(berth.CodeInvalid, "shutdown_timeout must be positive")
	case c.Limits.UnauthenticatedConnections < 0:
		return berth.Errorf(berth.CodeInvalid, "limits.unauthenticated_connections_per_address must not be negative (0 is the default, 64)")
	}
	names := map[string]bool{}
	for i, p := range c.IdentityProviders {
		switch {
		case p.Name == "" || p.Issuer == "" || p.ClientID == "":
			return berth.Errorf(berth.CodeInvalid, "identity_providers[%d] needs name, issuer and client_id", i).
				WithHint("identity_providers: [{name: corp, issuer: https://login.example.com, client_id: berth, client_secret_file: /run/secrets/corp}]")
		case (p.ClientSecretFile == "") == (p.ClientSecretEnv == ""):
			return berth.Errorf(berth.CodeInvalid, "identity provider %s needs its client secret from exactly one of client_secret_file and client_secret_env", p.Name).
				WithHint("client_secret_file: /run/secrets/%s (the secret is never written in the configuration)", p.Name)
		case names[p.Name]:
			return berth.Errorf(berth.CodeInvalid, "identity provider %s is listed twice", p.Name).
				WithHint("keep one entry named %s under identity_providers", p.Name)
		}
		names[p.Name] = true
	}
	for _, g := range c.Auth.OwnerGroups {
		if _, err := berth.ParseGroup(g); err != nil {
			return berth.Errorf(berth.CodeInvalid, "auth.owner_groups: %s", berth.AsError(err).Message).WithHint("%s", berth.AsError(err).Hint)
		}
	}
	if err := c.validateBlobs(); err != nil {
		return err
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	return c.validateDB()
}

// validateDB checks the database choice: a postgres URL needs a key
// encryption key, since the replicas keep their signing keys there.
func (c Config) validateDB() error {
	if c.DB == "" {
		if c.KeyEncryptionKey != "" {
			if _, err := c.keyEncryptionKey(); err != nil {
				return err
			}
		}
		return nil
	}
	if !c.Postgres() {
		return berth.Errorf(berth.CodeInvalid, "db %q is not a postgres:// URL", RedactDSN(c.DB)).
			WithHint("berth serve --db postgres://USER@HOST:5432/DATABASE, or leave db empty for SQLite in the data folder")
	}
	if c.KeyEncryptionKey == "" {
		return berth.Errorf(berth.CodeInvalid, "db is PostgreSQL but no key encryption key is set: replicas keep their signing keys in the database, encrypted with it").
			WithHint("set BERTH_KEY_ENCRYPTION_KEY (or key_encryption_key in the configuration file) to the key the replicas of this database use; only for a new database, make one: export BERTH_KEY_ENCRYPTION_KEY=$(openssl rand -base64 32), the same on every replica, kept as safe as the database password")
	}
	_, err := c.keyEncryptionKey()
	return err
}

// Postgres reports whether the metadata lives in PostgreSQL.
func (c Config) Postgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
}

// keyEncryptionKey decodes KeyEncryptionKey: 32 bytes, standard base64.
func (c Config) keyEncryptionKey() ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.KeyEncryptionKey))
	if err != nil || len(k) != 32 {
		return nil, berth.Errorf(berth.CodeInvalid, "the key encryption key is not base64 of 32 bytes").
			WithHint("generate one with: openssl rand -base64 32")
	}
	return k, nil
}

// RedactDSN returns dsn with its password, if any, replaced by xxxxx: the
// only form of a DSN that may reach a log or a message.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
