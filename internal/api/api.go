package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// Store is what the management API reads and writes.
type Store interface {
	berth.IdentityStore
	berth.RoleStore
	berth.RefreshTokenStore
	berth.AuditStore
	berth.PipelineStore
	berth.ConnectionStore
	berth.WebhookStore
	berth.ManifestStore
	berth.BlobLinkStore
	berth.PeopleStore
}

// Config holds the API's dependencies.
type Config struct {
	Store Store
	// Provider authenticates every request, and is told to drop its cached
	// view after every change, so that the change counts on the next request.
	Provider *oauth.Provider
	// Hasher hashes new client secrets; it must be the Provider's.
	Hasher *berth.SecretHasher
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand supplies ids and secret values (crypto/rand.Reader when nil).
	Rand io.Reader
	// MaxSecretLifetime bounds a new secret's lifetime
	// (berth.DefaultMaxSecretLifetime when zero).
	MaxSecretLifetime time.Duration
	// Logger receives internal errors and one line per change, each logged
	// with the request's context (server.LogHandler adds its request id). It
	// never receives a secret.
	Logger *slog.Logger
	// Audit, when set, receives one event per change, made or refused, and
	// per refused authentication.
	Audit berth.AuditRecorder
	// Issuers loads the keys of pipelines' issuers for
	// GET /api/v1/connections/{name}/verify; nil skips that check.
	Issuers berth.IssuerChecker
	// Outbound decides which webhook URLs may be registered.
	Outbound berth.OutboundPolicy
	// Keys lists and rotates the signing keys, and GC collects garbage, for
	// the admin commands run remotely (admin.go); nil answers not_found.
	Keys KeyRing
	GC   Collector
	// Upstreams keeps the pull-through cache's upstreams, and
	// UpstreamVerifier calls them for .../verify; with Upstreams nil,
	// /api/v1/upstreams answers not_found.
	Upstreams        UpstreamStore
	UpstreamVerifier UpstreamVerifier
	// URL is the registry's public URL (url: in the configuration), under
	// which identity providers redirect back; "" when unset.
	URL string
	// Lifecycle serves the lifecycle rules; nil answers not_found.
	Lifecycle *Lifecycle
	// Tags, when set, decides whether a tag may be deleted (immutable-tag
	// rules), as it does for the registry's DELETE: tag and repository
	// deletes through the API ask it first.
	Tags TagRules
	// Events, when set, hears image.deleted for each tag the API deletes,
	// as webhooks hear it from the registry.
	Events berth.EventPublisher
	// MaxTokenLifetime caps personal access tokens
	// (berth.DefaultMaxPATLifetime when zero).
	MaxTokenLifetime time.Duration
	// Sealer seals identity providers' client secrets; without it,
	// POST /api/v1/idps is refused.
	Sealer Sealer
}

// TagRules decides whether a tag may move or go: the registry's lifecycle
// enforcer (oci.Lifecycle has the same method). d is the digest the tag
// would point at, "" for a delete.
type TagRules interface {
	CheckTag(ctx context.Context, repo, tag string, d berth.Digest) (keep bool, err error)
}

// auditActions names the audit action of each endpoint that changes something.
var auditActions = map[string]berth.AuditAction{
	"POST /api/v1/principals":                       berth.AuditPrincipalCreate,
	"POST /api/v1/principals/{name}/disable":        berth.AuditPrincipalDisable,
	"POST /api/v1/principals/{name}/enable":         berth.AuditPrincipalEnable,
	"DELETE /api/v1/principals/{name}":              berth.AuditPrincipalDelete,
	"POST /api/v1/principals/{name}/secrets":        berth.AuditSecretAdd,
	"DELETE /api/v1/principals/{name}/secrets/{id}": berth.AuditSecretRemove,
	"POST /api/v1/secrets/revoke-leaked":            berth.AuditSecretRevokeLeaked,
	"POST /api/v1/pull-secrets":                     berth.AuditSecretAdd,
	"POST /api/v1/roles":                            berth.AuditRoleAssign,
	"DELETE /api/v1/roles":                          berth.AuditRoleRevoke,
	"POST /api/v1/keys/rotate":                      berth.AuditKeysRotate,
	"POST /api/v1/gc":                               berth.AuditGCRun,
	"DELETE /api/v1/repositories/{name...}":         berth.AuditRegistryDelete,
	"DELETE /api/v1/tags/{ref...}":                  berth.AuditRegistryDelete,
	"POST /api/v1/idps":                             berth.AuditIdPAdd,
	"DELETE /api/v1/idps/{name}":                    berth.AuditIdPRemove,
	"POST /api/v1/tokens":                           berth.AuditTokenCreate,
	"DELETE /api/v1/tokens/{id}":                    berth.AuditTokenRevoke,

	"POST /api/v1/pipelines":                      berth.AuditPipelineCreate,
	"DELETE /api/v1/pipelines/{name}":             berth.AuditPipelineDelete,
	"POST /api/v1/pipelines/{name}/keys":          berth.AuditPipelineKeys,
	"POST /api/v1/connections":                    berth.AuditConnectionCreate,
	"DELETE /api/v1/connections/{name}":           berth.AuditConnectionDelete,
	"POST /api/v1/connections/{name}/authorize":   berth.AuditConnectionAuthorize,
	"POST /api/v1/connections/{name}/permit":      berth.AuditConnectionAuthorize,
	"POST /api/v1/connections/{name}/unauthorize": berth.AuditConnectionUnauthorize,
	"POST /api/v1/connections/{name}/dismiss":     berth.AuditConnectionDismiss,
	"POST /api/v1/connections/{name}/disable":     berth.AuditConnectionDisable,
	"POST /api/v1/connections/{name}/enable":      berth.AuditConnectionEnable,
	"POST /api/v1/connections/{name}/save":        berth.AuditConnectionSave,
	"POST /api/v1/connections/{name}/convert":     berth.AuditConnectionConvert,

	"POST /api/v1/upstreams":              berth.AuditUpstreamCreate,
	"PATCH /api/v1/upstreams/{name}":      berth.AuditUpstreamUpdate,
	"DELETE /api/v1/upstreams/{name}":     berth.AuditUpstreamDelete,
	"POST /api/v1/retention":              berth.AuditLifecycleChange,
	"DELETE /api/v1/retention/{scope...}": berth.AuditLifecycleChange,
	"POST /api/v1/retention/run":          berth.AuditRetentionRun,
	"POST /api/v1/immutable":              berth.AuditLifecycleChange,
	"DELETE /api/v1/immutable":            berth.AuditLifecycleChange,
	"POST /api/v1/quotas":                 berth.AuditLifecycleChange,
	"DELETE /api/v1/quotas/{scope...}":    berth.AuditLifecycleChange,

	"POST /api/v1/webhooks":                                      berth.AuditWebhookCreate,
	"DELETE /api/v1/webhooks/{id}":                               berth.AuditWebhookDelete,
	"POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver": berth.AuditWebhookRedeliver,
}

// auditNote collects, while a change is made, what its audit event records.
type auditNote struct {
	target     string
	connection string // the service connection changed, for its history
	detail     map[string]string
}

type auditNoteKey struct{}

// handler serves /api/v1/.
type handler struct {
	cfg  Config
	rand io.Reader
	mux  *http.ServeMux
	// collections are the first path segments routed (/api/v1/principals…),
	// in the order they were, for the hint of an unknown endpoint.
	collections []string
	// patterns are the endpoints routed, as registered on mux.
	patterns []string
}

// New returns the handler of everything under /api/v1/. Mount it at
// "/api/v1/"; paths outside it answer not_found.
func New(cfg Config) http.Handler { return newHandler(cfg).mux }

func newHandler(cfg Config) *handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MaxSecretLifetime <= 0 {
		cfg.MaxSecretLifetime = berth.DefaultMaxSecretLifetime
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{cfg: cfg, rand: berth.LockedReader(cfg.Rand), mux: http.NewServeMux()}

	h.handle("POST /api/v1/principals", h.createPrincipal)
	h.handle("GET /api/v1/principals", h.listPrincipals)
	h.handle("GET /api/v1/principals/{name}", h.showPrincipal)
	h.handle("POST /api/v1/principals/{name}/disable", h.disablePrincipal)
	h.handle("POST /api/v1/principals/{name}/enable", h.enablePrincipal)
	h.handle("DELETE /api/v1/principals/{name}", h.deletePrincipal)

	h.handle("POST /api/v1/principals/{name}/secrets", h.addSecret)
	h.handle("GET /api/v1/principals/{name}/secrets", h.listSecrets)
	h.handle("DELETE /api/v1/principals/{name}/secrets/{id}", h.removeSecret)
	h.handle("POST /api/v1/secrets/revoke-leaked", h.revokeLeaked)
	h.handle("GET /api/v1/secrets", h.listExpiringSecrets)
	h.handle("POST /api/v1/pull-secrets", h.createPullSecret)

	h.handle("POST /api/v1/roles", h.assignRole)
	h.handle("DELETE /api/v1/roles", h.revokeRole)
	h.handle("GET /api/v1/roles", h.listRoles)

	h.routePipelines()
	h.routeConnections()
	h.routeWebhooks()
	h.routeAdmin()
	h.routeRepositories()
	h.routeUpstreams()
	h.routeLifecycle()

	h.routeIdPs()
	h.routeTokens()

	h.handle("GET /api/v1/access/check", h.checkAccess)
	h.handle("GET /api/v1/audit", h.listAudit)

	// Everything else, including a known path with another method, is
	// answered in the API's envelope rather than the mux's plain text.
	h.handle("/", h.unknown)
	return h
}

// handlerFunc is an endpoint: it writes a success itself and returns any
// failure, which serve renders.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *berth.Caller) error

// handle routes pattern to fn behind authentication.
func (h *handler) handle(pattern string, fn handlerFunc) {
	action, audited := auditActions[pattern]
	h.patterns = append(h.patterns, pattern)
	if _, path, ok := strings.Cut(pattern, " "); ok {
		if rest, ok := strings.CutPrefix(path, "/api/v1/"); ok {
			c := "/api/v1/" + strings.SplitN(rest, "/", 2)[0]
			if !slices.Contains(h.collections, c) {
				h.collections = append(h.collections, c)
			}
		}
	}
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := (*berth.Caller)(nil), berth.RefuseQueryCredential(r.URL.Query()) // exposed: refused before anything else
		if err == nil {
			err = berth.RefuseCrossSite(r, h.cfg.URL)
		}
		if err == nil {
			c, err = h.authenticate(r)
		}
		if err != nil {
			h.auditAuthFailure(r, err)
		} else {
			note := &auditNote{}
			r = r.WithContext(context.WithValue(berth.WithCaller(r.Context(), c), auditNoteKey{}, note))
			err = fn(w, r, c)
			if audited {
				h.audit(r, action, note, err)
			}
		}
		if err != nil {
			h.writeError(w, r, err)
		}
	})
}

// audit records a change, made (err nil) or refused.
func (h *handler) audit(r *http.Request, action berth.AuditAction, note *auditNote, err error) {
	if h.cfg.Audit == nil {
		return
	}
	target := note.target
	if target == "" {
		target = r.PathValue("name")
	}
	if target == "" {
		target = r.URL.Query().Get("principal")
	}
	e := berth.NewAuditEvent(r.Context(), action, target, err)
	if note.connection != "" {
		e.Connection = note.connection
	}
	for k, v := range note.detail {
		if e.Detail == nil {
			e.Detail = map[string]string{}
		}
		e.Detail[k] = v
	}
	h.cfg.Audit.Record(e)
}

// auditAuthFailure records a refused authentication.
func (h *handler) auditAuthFailure(r *http.Request, err error) {
	if h.cfg.Audit == nil {
		return
	}
	h.cfg.Audit.Record(berth.NewAuthFailureEvent(r, err))
}

// authenticatedKey carries a caller that a component of this process (the
// web console) authenticated already, from a browser session.
type authenticatedKey struct{}

// WithAuthenticated returns ctx carrying c as the caller of requests made
// with it in process (the web console calls the API's handler directly, as
// the person of its session cookie): the API then takes c instead of reading
// the Authorization header, and applies every other rule and audit as for
// a request from the network. Requests from the network never carry it: the
// server gives each a fresh context.
func WithAuthenticated(ctx context.Context, c *berth.Caller) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, c)
}

// authenticate returns the caller of r, who must have presented credentials:
// the management API has nothing for anonymous callers.
func (h *handler) authenticate(r *http.Request) (*berth.Caller, error) {
	c, err := (*berth.Caller)(nil), error(nil)
	if pre, ok := r.Context().Value(authenticatedKey{}).(*berth.Caller); ok && pre != nil {
		c = pre
	} else if c, err = h.cfg.Provider.AuthenticateRequest(r); err != nil {
		return nil, err
	}
	if c.Anonymous() {
		return nil, berth.Errorf(berth.CodeCredentialsMissing, "the management API needs credentials, and the request carried none").
			WithHint("set BERTH_URL, BERTH_CLIENT_ID and BERTH_CLIENT_SECRET for the berth CLI (the first admin's are in DATA/initial-admin.json), or send Basic CLIENT_ID:SECRET")
	}
	// An access token narrowed to a repository stays narrow: it must have
	// been issued for the API too.
	if err := h.cfg.Provider.AuthorizeAPI(r.Context(), c, r.Method); err != nil {
		return nil, err
	}
	return c, nil
}

func (h *handler) unknown(_ http.ResponseWriter, r *http.Request, _ *berth.Caller) error {
	return berth.Errorf(berth.CodeNotFound, "the management API has no endpoint %s %s", r.Method, r.URL.Path).
		WithHint("the endpoints are under %s", strings.Join(h.collections, ", "))
}

// now returns the current time as the store keeps it: UTC, in microseconds.
func (h *handler) now() time.Time { return h.cfg.Now().UTC().Truncate(time.Microsecond) }

// changed records a change in the server log and makes it count at once.
//
// Its attributes also become the change's audit event: "principal" its
// target, the others its detail.
func (h *handler) changed(r *http.Request, c *berth.Caller, msg string, attrs ...slog.Attr) {
	h.cfg.Provider.Invalidate()
	if note, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		for _, a := range attrs {
			if a.Key == "principal" {
				note.target = a.Value.String()
				continue
			}
			if note.detail == nil {
				note.detail = map[string]string{}
			}
			note.detail[a.Key] = a.Value.String()
		}
	}
	attrs = append(attrs, slog.String("actor", c.Actor.Name))
	h.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, msg, attrs...)
}

// maxBody bounds a request body: the largest request is a secret's
// description (256 bytes) and a lifetime.
const maxBody = 64 << 10

// decode reads r's body, one JSON object, into v. Unknown fields are refused,
// so that a misspelt field is not silently ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return berth.Errorf(berth.CodeInvalid, "the request body is empty; it must be a JSON object")
	case errors.As(err, &tooLarge):
		return berth.Errorf(berth.CodeTooLarge, "the request body is larger than %d bytes", maxBody)
	case err != nil:
		return bodyError(err)
	case dec.More():
		return berth.Errorf(berth.CodeInvalid, "the request body holds more than one JSON value")
	}
	return nil
}

// bodyError says in the API's words, not Go's, why encoding/json refused a
// request body: which field has which wrong JSON type, which field is
// unknown, or where the JSON breaks. It never quotes a value.
func bodyError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var timeErr *time.ParseError
	switch {
	case berth.AsError(err) != nil: // a field's own type said why
		return err
	case errors.As(err, &timeErr):
		return berth.Errorf(berth.CodeInvalid, "a time in the request body is not RFC 3339").
			WithHint("send it as \"2026-12-31T00:00:00Z\"; with the CLI, --expires-at 2026-12-31")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return berth.Errorf(berth.CodeInvalid, "field %q of the request body must be %s, not %s", berth.Truncate(typeErr.Field, 64), jsonKind(typeErr.Type), sentKind(typeErr)).
			WithDetail("field", berth.Truncate(typeErr.Field, 64)).WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
	case errors.As(err, &typeErr):
		return berth.Errorf(berth.CodeInvalid, "the request body must be %s, not %s", jsonKind(typeErr.Type), sentKind(typeErr)).WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
	case errors.As(err, &syntaxErr):
		return berth.Errorf(berth.CodeInvalid, "the request body is not valid JSON: it breaks at byte %d", syntaxErr.Offset).WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return berth.Errorf(berth.CodeInvalid, "the request body is not valid JSON: it ends too soon").WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// encoding/json has no type for this one; the field's name is the
		// caller's own, quoted by encoding/json.
		return berth.Errorf(berth.CodeInvalid, "the request body has a field this endpoint does not take: %s", berth.Truncate(field, 66)).
			WithDetail("field", strings.Trim(berth.Truncate(field, 66), `"`)).WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
	}
	return berth.Errorf(berth.CodeInvalid, "the request body is not the JSON object this endpoint takes").WithHint("send a JSON object of the fields the endpoint documents (docs/*.md, API tables); the berth CLI sends them for you")
}

// sentKind names the JSON type encoding/json saw ("number", "array"…),
// without the value it may append ("number 1.5"): a value is the
// caller's and may be long. A number refused for a number field was out
// of range or not whole.
func sentKind(e *json.UnmarshalTypeError) string {
	kind, _, _ := strings.Cut(e.Value, " ")
	if kind == "number" && strings.HasPrefix(jsonKind(e.Type), "a whole number") {
		return "that number (out of range, or not whole)"
	}
	return kind
}

// jsonKind names the JSON type a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another JSON type"
}

// parseLimit reads ?limit: def when absent, at most maxN, and invalid when
// it is not a positive number.
func parseLimit(q url.Values, def, maxN int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, berth.Errorf(berth.CodeInvalid, "limit %q is not a positive number", berth.Truncate(s, 20)).
			WithHint("give a whole number such as ?limit=%d (at most %d are returned), or leave it out for %d", def, maxN, def)
	}
	return min(n, maxN), nil
}

// writeJSON writes a successful response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
