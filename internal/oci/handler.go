package oci

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/server"
)

// UploadIdleTimeout is how long an authorized push may send nothing before
// its connection is cut; the server's short body timeout holds until the
// request is authorized.
const UploadIdleTimeout = time.Minute

// Handler serves /v2/. Its fields are its dependencies; all are required except
// those said to be optional, and one of Commits and CommitLock.
type Handler struct {
	Meta    berth.MetadataStore
	Blobs   berth.BlobStore
	Uploads berth.UploadStore
	Logger  *slog.Logger
	// Now and NewID are injected so tests control time and ids.
	Now   func() time.Time
	NewID func() string
	// Commits holds a blob's digest shared while an upload becomes a linked
	// blob of that digest; garbage collection holds it exclusively while it
	// deletes the blob, through a locker that excludes this one (the same
	// one in a process, one on the shared database across replicas).
	Commits berth.CommitLocker
	// CommitLock, used only when Commits is nil, is one process-wide lock
	// for every digest: what handlers built before Commits existed set.
	CommitLock *sync.RWMutex
	// MaxManifestSize bounds a manifest body; the spec asks for at least 4 MiB.
	MaxManifestSize int64
	// Guard, when set, authenticates every request and authorizes what it
	// does; without one the registry is open to anyone (tests, local use).
	Guard Guard
	// Audit, when set, receives one event per guarded request: its
	// authorization decision, or its failed authentication.
	Audit berth.AuditRecorder
	// Meter, when set, is told how many blob and upload bytes move.
	Meter Meter
	// Events, when set, is told of each manifest stored (image.pushed) and
	// each manifest or tag deleted (image.deleted), after it succeeded.
	Events berth.EventPublisher
	// Cache, when set, serves the cache namespaces of upstream registries
	// (see Cache); pushes there are refused with cache_read_only.
	Cache *Cache
	// SmallBlobs, when set, serves small blobs from memory (for a remote
	// blob store, where each Open is a request).
	SmallBlobs *SmallBlobs
	// Lifecycle, when set, enforces immutable tags and quotas on pushes and
	// deletes, and hears of each tag pushed and manifest pulled.
	Lifecycle Lifecycle
	// URL is the registry's public base URL (url: in the configuration);
	// when set, every error's detail links to the page explaining its
	// reason code (berth.ExplainURL). When empty there is no link.
	URL string

	sessions sessionRepos // the repositories of upload sessions seen lately
}

// Lifecycle enforces the lifecycle rules; lifecycle.Enforcer implements it.
type Lifecycle interface {
	// CheckTag returns tag_immutable when pointing repo:tag at d (d "":
	// deleting the tag) would move or remove an immutable tag; keep reports
	// an immutable tag, which a push stores with PutManifestKeepingTag.
	CheckTag(ctx context.Context, repo, tag string, d berth.Digest) (keep bool, err error)
	// CheckManifestDelete returns tag_immutable when deleting manifest d
	// would remove an immutable tag.
	CheckManifestDelete(ctx context.Context, repo string, d berth.Digest) error
	// CheckQuota returns quota_exceeded when linking size bytes of blob d
	// (d "": not known yet) into repo goes beyond a quota.
	CheckQuota(ctx context.Context, repo string, d berth.Digest, size int64) error
	// QuotaCovers reports whether a quota covers repo: a commit into it
	// then needs the upload's size before it.
	QuotaCovers(ctx context.Context, repo string) (bool, error)
	// ReserveQuota is CheckQuota for a commit: what it lets in counts
	// against the quotas for later commits until release, called once the
	// blob is linked or the commit failed.
	ReserveQuota(ctx context.Context, repo string, d berth.Digest, size int64) (release func(), err error)
	// TagPushed records the push of a tag.
	TagPushed(ctx context.Context, p berth.TagPush)
	// Pulled notes a manifest pulled, cheaply: it must not write per call.
	Pulled(repo string, d berth.Digest)
}

// Guard authenticates /v2/ requests and authorizes each Docker action they need.
// oauth.Provider implements it.
type Guard interface {
	// AuthenticateRequest returns the request's caller: a principal, or the
	// anonymous caller when it carries no credentials.
	AuthenticateRequest(r *http.Request) (*berth.Caller, error)
	// Authorize returns nil when caller may do the Docker action ("pull",
	// "push", "delete"; "*" on registry:catalog) on typ:name.
	Authorize(ctx context.Context, c *berth.Caller, typ, name, action string) error
	// Listable reports whether caller may see repo in the catalog.
	Listable(ctx context.Context, c *berth.Caller, repo string) bool
	// Challenge returns the WWW-Authenticate value for a 401 answering r, for
	// the Docker scope the request needed and the error it got.
	Challenge(r *http.Request, scope string, err error) string
}

type handlerFunc func(h *Handler, w http.ResponseWriter, r *http.Request, rt route) error

// endpoints maps each endpoint family to its handlers by method.
var endpoints = map[kind]map[string]handlerFunc{
	kindBase:        {"GET": (*Handler).base, "HEAD": (*Handler).base},
	kindCatalog:     {"GET": (*Handler).catalog},
	kindTags:        {"GET": (*Handler).tags},
	kindManifest:    {"GET": (*Handler).getManifest, "HEAD": (*Handler).getManifest, "PUT": (*Handler).putManifest, "DELETE": (*Handler).deleteManifest},
	kindBlob:        {"GET": (*Handler).getBlob, "HEAD": (*Handler).getBlob, "DELETE": (*Handler).deleteBlob},
	kindUploadStart: {"POST": (*Handler).startUpload},
	kindUpload:      {"GET": (*Handler).uploadStatus, "PATCH": (*Handler).patchUpload, "PUT": (*Handler).putUpload, "DELETE": (*Handler).cancelUpload},
	kindReferrers:   {"GET": (*Handler).referrers},
}

// ServeHTTP routes a /v2/ request and renders any error it returns.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Docker-Distribution-Api-Version"] = apiVersionValue
	rt := parseRoute(r.URL.Path)
	if err := h.serve(w, r, rt, nil); err != nil {
		h.writeError(w, r, rt, err)
	}
}

// ServeAs answers r, a /v2/ request an adapter makes in process for caller,
// whom it authenticated itself (the console, for the person of a session):
// the same authorization, audit event, lifecycle rules and webhook events as
// ServeHTTP gives caller's own request. It returns the error instead of
// rendering it, so that the adapter shows the same *berth.Error in its own
// envelope. Without a Guard, as in ServeHTTP, nothing is authorized.
func (h *Handler) ServeAs(w http.ResponseWriter, r *http.Request, caller *berth.Caller) error {
	if caller == nil {
		return fmt.Errorf("oci: ServeAs %s %s without a caller", r.Method, r.URL.Path)
	}
	return h.serve(w, r, parseRoute(r.URL.Path), caller)
}

// serve answers r for caller, or for the caller the Guard authenticates
// from r when caller is nil.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt route, caller *berth.Caller) error {
	// Before anything else, authentication included: the credential is
	// exposed whatever the request would have done.
	if r.URL.RawQuery != "" {
		if err := berth.RefuseQueryCredential(r.URL.Query()); err != nil {
			h.auditAuthFailure(r, err)
			return err
		}
	}
	if err := berth.RefuseCrossSite(r, h.URL); err != nil {
		h.auditAuthFailure(r, err)
		return err
	}
	methods, ok := endpoints[rt.Kind]
	if !ok {
		return berth.Errorf(berth.CodeNotFound, "no registry endpoint at %s", r.URL.Path).
			WithHint("registry paths look like /v2/NAME/manifests/REFERENCE or /v2/NAME/blobs/DIGEST")
	}
	fn, ok := methods[r.Method]
	if !ok {
		return berth.Errorf(berth.CodeUnsupported, "method %s is not supported on this endpoint", r.Method)
	}
	if rt.Repo != "" {
		if err := berth.ValidateRepositoryName(rt.Repo); err != nil {
			return err
		}
		if h.Cache != nil {
			up, err := h.Cache.upstreamFor(r.Context(), rt.Repo)
			if err != nil {
				return err
			}
			rt.Upstream = up
		}
	}
	if h.Guard != nil {
		if caller == nil {
			var err error
			if caller, err = h.Guard.AuthenticateRequest(r); err != nil {
				h.auditAuthFailure(r, err)
				return err
			}
		}
		rt.Caller = caller
		// A write into a cache namespace is refused whatever the
		// caller's roles: push rights there would not make it work.
		err := refuseCacheWrite(r, rt)
		if err == nil {
			err = h.authorize(r, rt, caller)
		}
		h.auditDecision(r, rt, err)
		if err != nil {
			return err
		}
	} else if err := refuseCacheWrite(r, rt); err != nil {
		return err
	}
	// Authorized to push: the body (a blob, a manifest) may take long, as
	// long as it keeps arriving.
	if rt.Kind == kindUploadStart || rt.Kind == kindUpload || rt.Kind == kindManifest {
		r.Body = server.ExtendBodyDeadline(w, r.Body, UploadIdleTimeout)
	}
	return fn(h, w, r, rt)
}

// required returns the Docker resource and action a request needs; typ is ""
// for the version check, which needs only an authenticated caller.
// https://distribution.github.io/distribution/spec/auth/scope/
func required(method string, rt route) (typ, name, action string) {
	switch {
	case rt.Kind == kindBase:
		return "", "", ""
	case rt.Kind == kindCatalog:
		return "registry", "catalog", "*"
	case rt.Kind == kindUploadStart || rt.Kind == kindUpload || method == http.MethodPut:
		return "repository", rt.Repo, "push"
	case method == http.MethodDelete:
		return "repository", rt.Repo, "delete"
	}
	return "repository", rt.Repo, "pull"
}

// authorize decides whether caller may make the request. The catalog is
// never refused to an authenticated caller: it lists what the caller may see.
// Authorization comes before any lookup, so a repository that does not exist
// and one the caller may not read are refused alike.
func (h *Handler) authorize(r *http.Request, rt route, caller *berth.Caller) error {
	typ, name, action := required(r.Method, rt)
	if typ == "" {
		if caller.Anonymous() && caller.Token == nil {
			return berth.Errorf(berth.CodeCredentialsMissing, "this registry needs credentials").
				WithHint("log in: docker login HOST -u CLIENT_ID --password-stdin, or berth login HOST")
		}
		return nil
	}
	err := h.Guard.Authorize(r.Context(), caller, typ, name, action)
	if err != nil && rt.Kind == kindCatalog && !caller.Anonymous() && !berth.IsCode(err, berth.CodeScopeNotGranted) {
		return nil // catalog filters by what the caller may see
	}
	return err
}

// auditDecision records the authorization decision on a guarded request.
func (h *Handler) auditDecision(r *http.Request, rt route, err error) {
	if h.Audit == nil {
		return
	}
	typ, name, action := required(r.Method, rt)
	var a berth.AuditAction
	switch {
	case typ == "":
		a = berth.AuditRegistryVersion
	case typ == "registry":
		a, name = berth.AuditRegistryCatalog, ""
	default:
		a = berth.AuditRegistryAction(action)
	}
	e := berth.NewAuditEvent(r.Context(), a, name, err)
	c := rt.Caller
	e.Actor, e.ActorID, e.CredentialID = c.Actor.Name, c.Actor.ID, c.CredentialID
	if typ == "" && berth.IsCode(err, berth.CodeCredentialsMissing) {
		e.Result = berth.AuditChallenged // the ping before a login, not a refusal
	}
	h.Audit.Record(e)
}

// auditAuthFailure records credentials a request presented and the Guard
// refused, naming the client id claimed (never what looks like a secret).
func (h *Handler) auditAuthFailure(r *http.Request, err error) {
	if h.Audit == nil {
		return
	}
	h.Audit.Record(berth.NewAuthFailureEvent(r, err))
}

// scopeOf is the Docker scope a request needs, named in 401 challenges; a
// mount also needs pull on the repository it mounts from.
func scopeOf(r *http.Request, rt route) string {
	typ, name, action := required(r.Method, rt)
	if typ == "" {
		return ""
	}
	if action == "push" {
		action = "pull,push"
	}
	scope := typ + ":" + name + ":" + action
	if from := r.URL.Query().Get("from"); rt.Kind == kindUploadStart && from != "" && berth.ValidateRepositoryName(from) == nil {
		scope += " repository:" + from + ":pull"
	}
	return scope
}

// base answers the API version check.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#determining-support
func (h *Handler) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}

// lockCommit holds d shared while its blob is committed or mounted, so that
// garbage collection cannot delete the bytes before the link exists.
func (h *Handler) lockCommit(ctx context.Context, d berth.Digest) (unlock func(), err error) {
	if h.Commits != nil {
		return h.Commits.LockShared(ctx, d)
	}
	h.CommitLock.RLock()
	return h.CommitLock.RUnlock, nil
}
