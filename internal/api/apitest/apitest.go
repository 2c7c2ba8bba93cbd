// Package apitest runs the management API for tests of the API itself, of
// its Go client and of the CLI: a real SQLite store in a temporary folder, a
// real oauth.Provider and an httptest server, with a settable clock and a log
// a test can search. It must never be imported outside tests.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
)

// Epoch is when a Server's clock starts.
var Epoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Clock is a settable clock, safe for concurrent use.
type Clock = testclock.Clock

// Log is a buffer that the server's logger writes while a test reads it.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Server is a running management API. Its principal "admin" holds owner on
// registry and one secret, AdminSecret.
type Server struct {
	URL      string
	Store    *sqlite.DB
	Provider *oauth.Provider
	// Federation verifies CI ID tokens for the Provider and, unless
	// Options.Issuers says otherwise, checks issuers for verify.
	Federation  *oauth.Federation
	Hasher      *berth.SecretHasher
	Clock       *Clock
	Log         *Log
	Admin       berth.Principal
	AdminSecret string
}

// MaxSecretLifetime is the Server's maximum secret lifetime: 365 days.
const MaxSecretLifetime = berth.DefaultMaxSecretLifetime

// Options change what New starts.
type Options struct {
	// Audit, when set, makes the API record its audit events straight into
	// the store, stamped by the Server's clock, so that a test reads them at
	// once.
	Audit bool
	// Issuers checks pipelines' issuers for GET …/verify; nil means the
	// Server's Federation.
	Issuers berth.IssuerChecker
	// URL, when set, is the API's configured public URL (api.Config.URL),
	// under which its errors link to their explanation.
	URL string
}

// New starts a Server, stopped and removed at the end of the test.
func New(t testing.TB) *Server {
	t.Helper()
	return NewWith(t, Options{})
}

// NewWith starts a Server as opts say, stopped and removed at the end of the
// test.
func NewWith(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pepper := make([]byte, berth.SecretPepperSize)
	if _, err := rand.Read(pepper); err != nil {
		t.Fatal(err)
	}
	hasher, err := berth.NewSecretHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(Epoch)
	keys, err := oauth.LoadKeyring(filepath.Join(dir, "keys"), clock.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	log := &Log{}
	logger := slog.New(server.LogHandler(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	federation := &oauth.Federation{Now: clock.Now, Logger: logger}
	if opts.Issuers == nil {
		opts.Issuers = federation
	}
	provider := &oauth.Provider{
		Store:   db,
		Hasher:  hasher,
		Keys:    keys,
		Refresh: &oauth.RefreshTokens{Store: db, Rand: rand.Reader},
		Clients: oauth.NewLimiter(0, 0, 0, clock.Now),
		Addrs:   oauth.NewLimiter(0, 0, 0, clock.Now),
		Now:     clock.Now,
		Service: "berth.test",
		Logger:  logger,

		Federation: federation,
	}
	cfg := api.Config{
		Store:             db,
		Provider:          provider,
		Hasher:            hasher,
		Now:               clock.Now,
		Rand:              rand.Reader,
		MaxSecretLifetime: MaxSecretLifetime,
		Logger:            logger,
		Issuers:           opts.Issuers,
		URL:               opts.URL,
		Upstreams:         db,
	}
	if opts.Audit {
		cfg.Audit = &syncAudit{t: t, store: db, now: clock.Now}
	}
	handler := api.New(cfg)
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", handler)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As internal/server does: every request has an id.
		id := fmt.Sprintf("req-%d", requests.Add(1))
		w.Header().Set("X-Request-Id", id)
		mux.ServeHTTP(w, r.WithContext(berth.WithRequestID(r.Context(), id)))
	}))
	t.Cleanup(hs.Close)
	keys.Issuer, keys.Audience = hs.URL, provider.Service
	provider.URL = hs.URL

	s := &Server{URL: hs.URL, Store: db, Provider: provider, Federation: federation, Hasher: hasher, Clock: clock, Log: log}
	s.Admin, s.AdminSecret = s.AddPrincipal(t, "admin", Role{"owner", "registry"})
	return s
}

// Role is a role on a scope, in their text forms.
type Role struct{ Role, Scope string }

// AddPrincipal creates, directly in the store, an enabled principal with one
// secret valid for MaxSecretLifetime and the given roles, and returns it with the
// secret's value.
func (s *Server) AddPrincipal(t testing.TB, name string, roles ...Role) (berth.Principal, string) {
	t.Helper()
	ctx := context.Background()
	now := s.Clock.Now()
	p, err := berth.NewPrincipal(rand.Reader, name, berth.PrincipalService, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	secret, value, err := berth.NewSecret(rand.Reader, s.Hasher, p.ID, now, MaxSecretLifetime, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateSecret(ctx, secret); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		s.Assign(t, p, r)
	}
	s.Provider.Invalidate()
	return p, value.Reveal()
}

// Assign gives p a role directly in the store.
func (s *Server) Assign(t testing.TB, p berth.Principal, r Role) {
	t.Helper()
	scope, err := berth.ParseScope(r.Scope)
	if err != nil {
		t.Fatal(err)
	}
	a := berth.RoleAssignment{PrincipalID: p.ID, PrincipalName: p.Name, Role: berth.Role(r.Role), Scope: scope, Created: s.Clock.Now()}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateRoleAssignment(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	s.Provider.Invalidate()
}

// Env returns the environment the CLI reads to reach the server as the
// principal with this client id (or name) and secret.
func (s *Server) Env(clientID, secret string) map[string]string {
	return map[string]string{"BERTH_URL": s.URL, "BERTH_CLIENT_ID": clientID, "BERTH_CLIENT_SECRET": secret}
}

// AdminEnv returns Env for the admin.
func (s *Server) AdminEnv() map[string]string { return s.Env(s.Admin.ClientID, s.AdminSecret) }

// NoSecretsLogged fails the test when the server's log holds any of values.
func (s *Server) NoSecretsLogged(t testing.TB, values ...string) {
	t.Helper()
	log := s.Log.String()
	for _, v := range values {
		if v != "" && strings.Contains(log, v) {
			t.Errorf("the server log holds a secret value (%.8s…)", v)
		}
	}
}

// syncAudit appends each event to the store as it is recorded.
type syncAudit struct {
	t     testing.TB
	store *sqlite.DB
	now   func() time.Time
}

func (a *syncAudit) Record(e berth.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	if err := a.store.AppendAuditEvents(context.Background(), []berth.AuditEvent{e}); err != nil {
		a.t.Errorf("append audit event %s: %v", e.Action, err)
	}
}
