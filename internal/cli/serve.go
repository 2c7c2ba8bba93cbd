package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/audit"
	"github.com/berth-dev/berth/internal/cluster"
	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/signin"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/upstream"
)

func newServeCommand(e *env) *cobra.Command {
	var f configFlags
	var ownerGroups []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry",
		Long: `Run the registry on one port: /v2/ (OCI distribution), the token endpoint
(/oauth2/token) and OpenID discovery, the management API (/api/v1), the web
console (/) with sign-in (/login, /device), /metrics and /healthz.

With no configuration, berth keeps SQLite metadata and blobs under ./berth-data
and listens on 127.0.0.1:5000.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			if len(ownerGroups) > 0 {
				cfg.Auth.OwnerGroups = append(cfg.Auth.OwnerGroups, ownerGroups...)
				if err := cfg.validate(); err != nil {
					return err
				}
			}
			return serve(cmd.Context(), cfg, e)
		},
	}
	f.register(cmd.Flags(), true)
	cmd.Flags().StringSliceVar(&ownerGroups, "owner-group", nil, "make the group PROVIDER:GROUP owner on registry at start (repeatable; auth.owner_groups)")
	return cmd
}

// newLogger writes to w, the stderr that Run was given, never straight to
// os.Stderr: Run's caller decides where logs go.
func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	return slog.New(server.LogHandler(logFormat(cfg)(w)))
}

// logFormat returns how records are written: cfg's level and format.
func logFormat(cfg LogConfig) func(io.Writer) slog.Handler {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated
	opts := &slog.HandlerOptions{Level: level}
	return func(w io.Writer) slog.Handler {
		if cfg.Format == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
}

// newID returns 128 random bits in hex: upload ids and request ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveNow is the clock of the registry's decisions: token and secret expiry,
// attempt limits, upload and link times. Tests in this package move it forward
// to expire tokens without waiting; nothing else changes it.
var serveNow = time.Now

// serve is the composition root: configuration in, a running registry out.
func serve(ctx context.Context, cfg Config, e *env) error {
	// The access log's lines are gathered (server.LogBuffer); what is held
	// is written when serve returns, after the shutdown's own records.
	logs := server.NewLogBuffer(e.stderr)
	defer logs.Close()
	logger := slog.New(server.LogHandler(logs.Handler(logFormat(cfg.Log))))
	st, err := openServed(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.openBlobs(ctx, cfg, e.getenv); err != nil {
		return err
	}

	hasher, err := st.pepper(ctx, cfg.Data)
	if err != nil {
		return err
	}
	adminFile, adminExpires, err := st.bootstrap(ctx, hasher, cfg.Data)
	if err != nil {
		return err
	}

	registry := &oci.Handler{
		Meta:            st.meta,
		Blobs:           st.blobs,
		Uploads:         st.blobs,
		Logger:          logger,
		Now:             serveNow,
		NewID:           newID,
		Commits:         st.commits,
		MaxManifestSize: cfg.MaxManifestSize,
		URL:             cfg.URL,
	}
	// Configs and small layers from memory: on a remote blob store each
	// Open is a request; on disk it is an open, a stat and a close, which
	// cost a 4 KiB blob GET more CPU than sending its bytes.
	registry.SmallBlobs = &oci.SmallBlobs{MaxBlob: smallBlobMax, MaxTotal: smallBlobsTotal}
	ups, err := st.upstreams(cfg.Data)
	if err != nil {
		return err
	}
	ups.logger = logger
	upstreamClient := upstream.New(nil, serveNow)
	// Verification forgets what it knew of an upstream (its tokens) to
	// check the credential afresh: its own client, so that pulls keep
	// theirs.
	verifyClient := upstream.New(nil, serveNow)
	mtr := metrics.New(st.meta)
	registry.Cache = &oci.Cache{Upstreams: ups, Client: upstreamClient, Meter: mtr, Now: serveNow}
	// The cache keeps the upstreams between requests: what changes them
	// here (the API) drops them, another replica's change by its notice.
	ups.changed = registry.Cache.Invalidate
	mtr.WatchUpstreams(ups)
	mtr.WatchTokens(st.meta)
	registry.Meter = mtr // blob and upload bytes
	mtr.WatchOwners(st.meta, serveNow)
	mtr.WatchQuotas(st.meta)
	tlsConfig, err := serveTLS(cfg, logger)
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		TLS:             tlsConfig,
		Observe:         mtr.ObserveRequest,
		Addr:            cfg.Addr,
		Logger:          logger,
		NewID:           newID,
		ShutdownTimeout: cfg.ShutdownTimeout,

		UnauthenticatedPerAddress: cfg.Limits.UnauthenticatedConnections,
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	issuer := cfg.URL
	if issuer == "" {
		issuer = srv.URL()
		warnNoURL(logger, srv.Addr())
	}
	keys, err := st.keyring(ctx, cfg, issuer)
	if err != nil {
		return err
	}
	outbound := berth.OutboundPolicy{AllowPrivate: cfg.Outbound.AllowPrivate}
	federation := &oauth.Federation{Now: serveNow, Logger: logger, Outbound: outbound}
	provider := &oauth.Provider{
		Store:         st.meta,
		Hasher:        hasher,
		Keys:          keys,
		Refresh:       &oauth.RefreshTokens{Store: st.meta, Rand: rand.Reader},
		Clients:       st.limiter("client"),
		Addrs:         st.limiter("addr"),
		Bearers:       oauth.NewLimiter(oauth.BearerFailureLimit, time.Minute, 0, serveNow),
		Now:           serveNow,
		TokenLifetime: cfg.Auth.TokenLifetime,
		Service:       cfg.Auth.Service,
		URL:           cfg.URL,
		Logger:        logger,

		Federation:      federation,
		SessionLifetime: cfg.Federation.SessionLifetime,
		Repositories:    st.meta,
		CacheNamespace:  registry.Cache.ReadOnly,
	}
	registry.Guard = provider
	sealer, err := st.peopleSealer(cfg)
	if err != nil {
		return err
	}
	people := &signin.Service{Store: st.meta, RP: &signin.RelyingParty{Outbound: outbound, Now: serveNow}, Sealer: sealer,
		URL: cfg.URL, SessionLifetime: cfg.Auth.UserSessionLifetime, Now: serveNow, Logger: logger, Invalidate: provider.Invalidate,
		DeviceStarts: st.limiter("device"), DeviceGuesses: st.limiter("device-code")}
	provider.People = people
	configured, err := ensureOwnerGroups(ctx, st.meta, cfg.Auth.OwnerGroups, logger)
	if err != nil {
		return err
	}
	idps, err := ensureIdentityProviders(ctx, st.meta, cfg, sealer, e.getenv, logger)
	if err != nil {
		return err
	}
	auditLog := audit.New(st.meta, audit.Options{Logger: logger})
	for _, ev := range append(configured, idps...) {
		auditLog.Record(ev)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := auditLog.Close(cctx); err != nil {
			logger.Error("flush the audit log", slog.Any("err", err))
		}
	}()
	decisions := mtr.Recorder(auditLog) // counts decisions, then audits them
	registry.Audit = decisions
	// Webhooks (see webhook.go): the audit stream and the registry publish events.
	hookStore := withSealedWebhooks(st.meta, st.sealer) // webhook secrets sealed at rest
	if sw, ok := hookStore.(sealedWebhooks); ok {
		sw.sealPlain(ctx, logger)
	}
	hooks := newWebhooks(hookStore, issuer, federation, outbound, cfg.Webhooks.ScheduleInterval, serveNow, logger)
	hooks.scheduler.Upstreams = ups // upstream credentials' expiry notices, and their verification
	hooks.scheduler.VerifyUpstream = func(ctx context.Context, u berth.Upstream) error { return verifyClient.Verify(ctx, u, "") }
	hooks.scheduler.Tokens = st.meta // personal access tokens' expiry notices
	decisions = hooks.publisher.Recorder(decisions)
	registry.Audit, registry.Events = decisions, hooks.publisher
	// Lifecycle rules: immutable tags and quotas on every push, retention
	// with garbage collection.
	rules := &lifecycle.Enforcer{Store: st.meta, Meta: st.meta, Now: serveNow, Logger: logger, Events: hooks.publisher}
	registry.Lifecycle = rules
	retention := &berth.Retention{Rules: st.meta, Meta: st.meta, Audit: decisions, Events: hooks.publisher}
	people.Audit = decisions
	(&signin.Handler{Service: people, Authenticate: provider.AuthenticateSession}).Routes(srv)
	discovery, err := oauth.NewDiscovery(issuer, keys, oauth.WithDeviceAuthorization())
	if err != nil {
		return err
	}
	apiHandler := st.invalidating(api.New(api.Config{Store: hookStore, Provider: provider, Hasher: hasher, Now: serveNow,
		Rand: rand.Reader, MaxSecretLifetime: cfg.Auth.MaxSecretLifetime, Logger: logger, Audit: decisions, Issuers: federation,
		Outbound: outbound, Keys: serverKeys{keys, st, cfg, issuer}, GC: serverGC{st, cfg.GC.Grace, mtr.ObserveGC}, Sealer: sealer,
		MaxTokenLifetime: cfg.Auth.MaxTokenLifetime, URL: cfg.URL, Upstreams: ups, UpstreamVerifier: verifyClient,
		Lifecycle: &api.Lifecycle{Store: st.meta, Retention: retention, Changed: rules.Invalidate}, Tags: rules, Events: hooks.publisher}))
	tokens := &oauth.TokenHandler{Provider: provider, Logger: logger, Audit: decisions}
	for pattern, h := range map[string]http.Handler{
		"/v2/":                              registry,
		"/v2":                               registry,
		oauth.TokenPath:                     tokens,
		oauth.ExchangePath:                  http.HandlerFunc(tokens.ServeExchange),
		oauth.RevokePath:                    oauth.RevokeHandler{Tokens: tokens},
		"/api/v1/":                          apiHandler,
		"/.well-known/openid-configuration": discovery,
		"/oauth2/jwks":                      discovery,
		"GET /metrics":                      mtr.Protected(provider),
	} {
		srv.Handle(pattern, h)
	}
	// The web console at /: pages over the same API handler, as the person
	// of the browser's session.
	(&console.Handler{API: apiHandler, Registry: registry, Authenticate: provider.AuthenticateSession, AuthenticateClient: provider.AuthenticateClient,
		Sessions: people, Providers: st.meta.FindIdentityProviders, URL: cfg.URL, Service: cfg.Auth.Service, Now: serveNow, Logger: logger, Audit: decisions,
		LastVerification: func() (map[string]berth.Check, time.Time) {
			failing, at := hooks.scheduler.LastVerification()
			m := make(map[string]berth.Check, len(failing))
			for _, f := range failing {
				m[f.Connection] = berth.Check{Name: "scheduled verification", Status: berth.CheckFail, Code: f.Reason, Message: f.Message, Hint: f.Hint}
			}
			return m, at
		}}).Routes(srv)

	owners := &ownerWatch{meta: st.meta, now: serveNow, logger: logger, data: cfg.Data}
	owners.check(ctx) // at start, before the first request
	logger.Info("berth is serving", slog.String("addr", srv.Addr()), slog.String("data", cfg.Data), slog.String("db", st.describe(cfg)), slog.String("blobs", describeBlobs(cfg.Blobs)), slog.String("version", Version))
	fmt.Fprintf(e.stdout, "berth listening on %s (data in %s)\n", srv.URL(), cfg.Data)
	if adminFile != "" {
		fmt.Fprintf(e.stdout, "first start: the credentials of principal %s are in %s\n", berth.AdminName, adminFile)
		fmt.Fprintf(e.stdout, "its secret expires on %s (in %d days): before then, berth secret add %s --expires-in 90d, or make another principal owner of the registry\n",
			adminExpires.UTC().Format("2006-01-02"), doctorDaysLeft(adminExpires, serveNow()), berth.AdminName)
	}

	// The collector stops, and is waited for, before the stores close: it must
	// never run on a closed database, nor outlive serve.
	gcCtx, stopGC := context.WithCancel(ctx)
	var gcRunning sync.WaitGroup
	defer gcRunning.Wait()
	defer stopGC()
	if st.replica != nil { // replicas: apply the changes the others announce
		gcRunning.Go(func() {
			invalidate := func() { provider.Invalidate(); registry.Cache.Invalidate() }
			st.replica.Listen(gcCtx, invalidate, func() error { return keys.Reload(time.Now()) }, nil)
		})
	}
	gcRunning.Go(func() { runKeyMaintenance(gcCtx, keys, st, auditLog, cfg.Audit.Retention, logger) })
	gcRunning.Go(func() { owners.run(gcCtx, ownerWatchInterval) })
	hooks.start(gcCtx, &gcRunning) // webhooks: deliveries and expiry notices, until shutdown
	gcRunning.Go(func() { rules.RunFlusher(gcCtx, pullFlushInterval) })
	if cfg.GC.Interval > 0 {
		gc := &berth.GC{Meta: st.meta, Blobs: st.blobs, Uploads: st.blobs, Lock: st.commits, Grace: gcGrace(cfg.GC.Grace)}
		evict := func(ctx context.Context) { evictCaches(ctx, st.meta, ups, decisions, hooks.publisher, logger) }
		gcRunning.Go(func() { runGCSchedule(gcCtx, retention, evict, gc, st.once, cfg.GC.Interval, logger, mtr.ObserveGC) })
	}
	return srv.Serve(ctx)
}

// warnNoURL says loudly that url is unset while berth listens on more than
// loopback: each challenge's token realm then names the request's Host
// header, which the client chooses, so a client can be sent to log in
// elsewhere.
func warnNoURL(logger *slog.Logger, addr string) {
	if host, _, err := net.SplitHostPort(addr); err == nil && berth.IsLoopbackHost(host) {
		return
	}
	logger.Warn("url is not set: the token realm of every challenge names the Host header of the request, which any client chooses; set url to the registry's public URL (https://registry.example.com) in the configuration file",
		slog.String("addr", addr))
}

// runKeyMaintenance picks up keys rotated by berth keys rotate, prunes keys
// no live token needs, deletes refresh tokens long expired and audit events
// past their retention, until ctx is done. Of replicas, every one reloads its
// keys, and one at a time does the deletions.
func runKeyMaintenance(ctx context.Context, keys *oauth.Keyring, st *served, auditLog *audit.Writer, retention time.Duration, logger *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if err := keys.Reload(now); err != nil {
			logger.Error("reload signing keys", slog.Any("err", err))
		}
		_, err := st.once(ctx, "maintenance", func(ctx context.Context) error {
			if _, err := keys.Prune(now); err != nil {
				logger.Error("prune signing keys", slog.Any("err", err))
			}
			if _, err := st.meta.DeleteExpiredRefreshTokens(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
				logger.Error("delete expired refresh tokens", slog.Any("err", err))
			}
			if _, err := st.meta.DeleteExpiredAssertions(ctx, now); err != nil && ctx.Err() == nil {
				logger.Error("delete expired ID token records", slog.Any("err", err))
			}
			if _, err := st.meta.DeleteExpiredDeviceAuthorizations(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
				logger.Error("delete expired device logins", slog.Any("err", err))
			}
			if retention > 0 {
				if _, err := auditLog.Prune(ctx, now.Add(-retention)); err != nil && ctx.Err() == nil {
					logger.Error("prune the audit log", slog.Any("err", err))
				}
			}
			if st.replica != nil {
				if err := st.replica.Maintain(ctx, now); err != nil && ctx.Err() == nil {
					logger.Error("delete forgiven attempt counters", slog.Any("err", err))
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			logger.Error("scheduled maintenance", slog.Any("err", err))
		}
	}
}

// Small blobs kept in memory: up to 64 KiB each, 16 MiB in all (within the
// memory budget of a replica).
const (
	smallBlobMax    = 64 << 10
	smallBlobsTotal = 16 << 20
)

// pullFlushInterval is how often the pull times the registry noted are
// written, in one transaction.
const pullFlushInterval = 30 * time.Second

// runGCSchedule applies the retention rules, evicts cache namespaces past
// their bound (evict) and collects garbage every
// interval until ctx is done; of replicas, one at a time (once), and a
// collection that a killed replica left unfinished is done again in full by
// the next one.
func runGCSchedule(ctx context.Context, retention *berth.Retention, evict func(context.Context), gc *berth.GC, once exclusive, interval time.Duration, logger *slog.Logger, observe func(time.Time, berth.GCReport, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := serveNow() // the rules' and the grace's clock, which tests move
		var rep berth.GCReport
		ran, err := once(ctx, "gc", func(ctx context.Context) (err error) {
			if deleted, err := retention.Run(ctx, berth.Scope{}, start, false); err != nil && ctx.Err() == nil {
				logger.Error("retention failed", slog.Any("err", err))
			} else if len(deleted) > 0 {
				logger.Info("retention deleted images", slog.Int("images", len(deleted)))
			}
			evict(ctx)
			rep, err = gc.Run(ctx, start)
			return err
		})
		if err != nil && ctx.Err() != nil {
			return // stopped midway by shutdown: not a failure
		}
		if !ran && err == nil {
			logger.Debug("garbage collection skipped: another replica is collecting")
			continue
		}
		observe(serveNow(), rep, err)
		if err != nil {
			logger.Error("garbage collection failed", slog.Any("err", err))
			continue
		}
		logger.Info("garbage collection done", slog.Int("links", len(rep.Links)), slog.Int("blobs", len(rep.Blobs)),
			slog.Int64("blob_bytes", rep.BlobBytes), slog.Int("uploads", len(rep.Uploads)), slog.Duration("duration", time.Since(start)))
	}
}

// evictCaches evicts, from each cache namespace with a bound (berth
// upstream create --max-size), the least recently pulled images past it;
// the garbage collection that follows frees their blobs.
func evictCaches(ctx context.Context, meta berth.CacheEvictionStore, ups oci.UpstreamFinder, audit berth.AuditRecorder, events berth.EventPublisher, logger *slog.Logger) {
	us, err := ups.FindUpstreams(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("cache eviction failed", slog.Any("err", err))
		}
		return
	}
	for _, u := range us {
		evicted, err := berth.EvictCache(ctx, meta, u, false)
		if err != nil && ctx.Err() == nil {
			logger.Error("cache eviction failed", slog.String("upstream", u.Name), slog.Any("err", err))
		}
		if len(evicted) > 0 {
			var bytes int64
			for _, e := range evicted {
				bytes += e.Size
				e.Record(ctx, u, audit, events)
			}
			logger.Info("cache eviction", slog.String("upstream", u.Name), slog.String("namespace", u.Namespace),
				slog.Int("manifests", len(evicted)), slog.Int64("bytes", bytes), slog.Int64("max_size", u.MaxSize))
		}
	}
}

// exclusive runs fn, the scheduled job called name, unless another replica
// runs it now (ran is false then).
type exclusive func(ctx context.Context, name string, fn func(context.Context) error) (ran bool, err error)

// served are the stores berth serve runs on, and every command that works
// on them directly (gc, audit, keys): SQLite in the data folder, or
// PostgreSQL shared with other replicas (replica set); blobs that every
// replica must reach; and the commit locker that keeps garbage collection
// from deleting a blob being pushed, across every process on these stores.
type served struct {
	meta    berth.MetadataStore
	blobs   blobStore              // nil until openBlobs
	commits berth.CommitLocker     // the registry's, and every GC's on these stores
	replica *cluster.Replica       // nil on SQLite
	pgLocks *postgres.CommitLocker // commits on PostgreSQL, closed with the stores
	once    exclusive
	// sealer seals what must stay secret in the database (webhook secrets)
	// with the key encryption key; nil when none is configured.
	sealer *oauth.Sealer
}

// openServed opens the metadata store cfg names, the one function that does
// so for every command: SQLite in the data folder (created when missing), or
// the PostgreSQL database of cfg.DB with the key encryption key. Close it
// after use.
func openServed(ctx context.Context, cfg Config, logger *slog.Logger) (*served, error) {
	if !cfg.Postgres() {
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
		if err := tightenDataFolder(cfg.Data, logger); err != nil {
			return nil, err
		}
		meta, err := sqlite.Open(ctx, filepath.Join(cfg.Data, metadataFile))
		if err != nil {
			return nil, err
		}
		if err := tightenDataFolder(cfg.Data, logger); err != nil { // the files Open created
			meta.Close()
			return nil, err
		}
		// File locks in the data folder: a berth gc run beside berth serve
		// never deletes a blob the server is linking.
		locks, err := disk.NewCommitLocker(filepath.Join(cfg.Data, locksFolder))
		if err != nil {
			meta.Close()
			return nil, err
		}
		st := &served{meta: meta, commits: locks,
			once: func(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
				return true, fn(ctx)
			}}
		if cfg.KeyEncryptionKey != "" {
			kek, err := cfg.keyEncryptionKey()
			if err == nil {
				st.sealer, err = oauth.NewSealer(kek, rand.Reader)
			}
			if err != nil {
				st.Close()
				return nil, err
			}
		}
		return st, nil
	}
	kek, err := cfg.keyEncryptionKey()
	if err != nil {
		return nil, err
	}
	sealer, err := oauth.NewSealer(kek, rand.Reader)
	if err != nil {
		return nil, err
	}
	// postgres.Open's errors name the server, never the password.
	db, err := postgres.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	locks, err := db.CommitLocker(0)
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &cluster.Replica{DB: db, Sealer: sealer, Logger: logger}
	return &served{meta: db, commits: locks, pgLocks: locks, replica: r, once: r.Exclusive, sealer: sealer}, nil
}

// openBlobs opens the blob store cfg.Blobs names (see openBlobStore), which
// replicas must share: a bucket, or the storage folder of the data folder.
func (st *served) openBlobs(ctx context.Context, cfg Config, getenv func(string) string) error {
	blobs, err := openBlobStore(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	st.blobs = blobs
	return nil
}

// Close closes the stores, once nothing uses them.
func (st *served) Close() error {
	if st.pgLocks != nil {
		st.pgLocks.Close()
	}
	return st.meta.Close()
}

// describe names the metadata store for the log, without a password.
func (st *served) describe(cfg Config) string {
	if st.replica == nil {
		return "sqlite"
	}
	return RedactDSN(cfg.DB)
}

// pepper returns the secret-hashing key: the data folder's, or on
// PostgreSQL the one all replicas share (seeded, on its first start, with
// the data folder's if it has one, so that a moved installation keeps its
// secrets).
func (st *served) pepper(ctx context.Context, data string) (*berth.SecretHasher, error) {
	if st.replica == nil {
		return loadPepper(data)
	}
	seed, err := os.ReadFile(filepath.Join(data, pepperFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	p, err := st.replica.Pepper(ctx, seed)
	if err != nil {
		return nil, err
	}
	return berth.NewSecretHasher(p)
}

// bootstrap is the first start; replicas starting at once take turns, so
// that one of them creates the admin (and writes initial-admin.json in its
// own data folder).
func (st *served) bootstrap(ctx context.Context, h *berth.SecretHasher, data string) (file string, expires time.Time, err error) {
	if st.replica == nil {
		return bootstrap(ctx, st.meta, h, data)
	}
	err = st.replica.Serially(ctx, "bootstrap", func() error {
		file, expires, err = bootstrap(ctx, st.meta, h, data)
		return err
	})
	return file, expires, err
}

// keyring opens the signing keys: the data folder's, or the database's.
func (st *served) keyring(ctx context.Context, cfg Config, issuer string) (kr *oauth.Keyring, err error) {
	err = st.withKeyring(ctx, cfg, issuer, func(k *oauth.Keyring) error {
		kr = k
		return nil
	})
	return kr, err
}

// withKeyring opens the signing keys for fn: the data folder's, or the
// database's, which fn changes while no other replica does (see
// cluster.Replica.WithKeyring).
func (st *served) withKeyring(ctx context.Context, cfg Config, issuer string, fn func(*oauth.Keyring) error) error {
	if st.replica == nil {
		kr, err := loadKeyring(cfg, issuer)
		if err != nil {
			return err
		}
		return fn(kr)
	}
	return st.replica.WithKeyring(ctx, time.Now(), func(kr *oauth.Keyring) error {
		configureKeyring(kr, cfg, issuer)
		return fn(kr)
	})
}

// limiter limits failed attempts per kind of key, across replicas when
// there are.
func (st *served) limiter(kind string) *oauth.Limiter {
	if st.replica == nil {
		return oauth.NewLimiter(0, 0, 0, serveNow)
	}
	return st.replica.Limiter(kind, serveNow)
}

// invalidating tells the other replicas of each change made through the
// management API h.
func (st *served) invalidating(h http.Handler) http.Handler {
	if st.replica == nil {
		return h
	}
	return st.replica.Invalidating(h)
}
