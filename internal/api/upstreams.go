package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-dev/berth"
)

// UpstreamStore persists the upstream registries of the pull-through
// cache. It stores what it is given: the composition root hands the API a
// store that seals the credential at rest.
type UpstreamStore interface {
	// CreateUpstream stores u; conflict when its name or namespace is
	// taken, and nothing changes.
	CreateUpstream(ctx context.Context, u berth.Upstream) error
	// FindUpstream returns the upstream, its credential included, or
	// not_found.
	FindUpstream(ctx context.Context, name string) (berth.Upstream, error)
	// FindUpstreams returns every upstream, credentials included, by name.
	FindUpstreams(ctx context.Context) ([]berth.Upstream, error)
	// UpdateUpstream stores u over the upstream of its name, all but its
	// namespace and creation time, or returns not_found.
	UpdateUpstream(ctx context.Context, u berth.Upstream) error
	// DeleteUpstream removes the upstream, or returns not_found.
	DeleteUpstream(ctx context.Context, name string) error
}

// UpstreamVerifier calls an upstream as a pull through the cache would.
// upstream.Client implements it.
type UpstreamVerifier interface {
	// Verify returns nil when the upstream answers as a registry and
	// accepts the stored credential, else the refusal a pull would get.
	Verify(ctx context.Context, u berth.Upstream, repo string) error
}

// CreateUpstreamRequest is the body of POST /api/v1/upstreams.
type CreateUpstreamRequest struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Namespace string `json:"namespace"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"password,omitempty"`
	// TagTTL is a duration such as 1h or 1d (berth.DefaultTagTTL when
	// empty).
	TagTTL string `json:"tag_ttl,omitempty"`
	// MaxSize bounds the cache namespace, in bytes or with a unit such as
	// 20GiB; empty for no bound.
	MaxSize   string     `json:"max_size,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// UpdateUpstreamRequest is the body of PATCH /api/v1/upstreams/{name}: what
// is given changes, the rest stays. A new credential (Username and
// Password, or Anonymous for none) replaces the recorded expiry with
// ExpiresAt, or with none; ExpiresAt alone records the current
// credential's. An empty MaxSize leaves the bound; "0" removes it.
type UpdateUpstreamRequest struct {
	URL       string     `json:"url,omitempty"`
	Username  string     `json:"username,omitempty"`
	Password  string     `json:"password,omitempty"`
	Anonymous bool       `json:"anonymous,omitempty"`
	TagTTL    string     `json:"tag_ttl,omitempty"`
	MaxSize   string     `json:"max_size,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// UpstreamList is the answer of GET /api/v1/upstreams, by name.
type UpstreamList struct {
	Upstreams []berth.Upstream `json:"upstreams"`
}

// UpstreamCheck is the answer of GET /api/v1/upstreams/{name}/verify: ok,
// or the refusal a pull through the cache would get now, and how long the
// credential has left when its expiry is known.
type UpstreamCheck struct {
	Name      string     `json:"name"`
	URL       string     `json:"url"`
	OK        bool       `json:"ok"`
	Reason    berth.Code `json:"reason,omitempty"`
	Message   string     `json:"message,omitempty"`
	Hint      string     `json:"hint,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	DaysLeft  *int       `json:"days_left,omitempty"`
	CheckedAt time.Time  `json:"checked_at"`
}

// maxTagTTL bounds --tag-ttl: a tag never re-checked is a digest.
const maxTagTTL = 365 * 24 * time.Hour

func (h *handler) routeUpstreams() {
	h.handle("POST /api/v1/upstreams", h.createUpstream)
	h.handle("GET /api/v1/upstreams", h.listUpstreams)
	h.handle("GET /api/v1/upstreams/{name}", h.showUpstream)
	h.handle("PATCH /api/v1/upstreams/{name}", h.updateUpstream)
	h.handle("DELETE /api/v1/upstreams/{name}", h.deleteUpstream)
	h.handle("GET /api/v1/upstreams/{name}/verify", h.verifyUpstream)
}

// upstreams returns the store, or not_found when this server has none.
func (h *handler) upstreams() (UpstreamStore, error) {
	if h.cfg.Upstreams == nil {
		return nil, berth.Errorf(berth.CodeNotFound, "this server has no pull-through cache").
			WithHint("upgrade the server to a berth that serves /api/v1/upstreams")
	}
	return h.cfg.Upstreams, nil
}

// upstreamByName returns the upstream the path's {name} names.
func (h *handler) upstreamByName(r *http.Request) (berth.Upstream, error) {
	st, err := h.upstreams()
	if err != nil {
		return berth.Upstream{}, err
	}
	name := r.PathValue("name")
	if err := berth.ValidateUpstreamName(name); err != nil {
		return berth.Upstream{}, err
	}
	u, err := st.FindUpstream(r.Context(), name)
	if berth.IsCode(err, berth.CodeNotFound) {
		return u, berth.UpstreamUnknown(name)
	}
	return u, err
}

// createUpstream registers an upstream and its cache namespace.
//
// POST /api/v1/upstreams → 201 with the upstream, never its password.
// Needs owner on registry; invalid for what berth.NewUpstream refuses and
// a malformed TTL; conflict for a name or namespace taken, and for a
// namespace that holds repositories of berth's own (they would turn
// read-only).
func (h *handler) createUpstream(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "creating an upstream"); err != nil {
		return err
	}
	st, err := h.upstreams()
	if err != nil {
		return err
	}
	var req CreateUpstreamRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	noteTarget(r, req.Name)
	ttl, err := parseTagTTL(req.TagTTL)
	if err != nil {
		return err
	}
	var maxSize int64
	if req.MaxSize != "" {
		if maxSize, err = berth.ParseByteSize(req.MaxSize); err != nil {
			return err
		}
	}
	u, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: req.Name, URL: req.URL, Namespace: req.Namespace,
		Username: req.Username, Password: berth.UpstreamPasswordOf(req.Password), TagTTL: ttl, MaxSize: maxSize, ExpiresAt: req.ExpiresAt}, h.now())
	if err != nil {
		return err
	}
	if err := h.refuseUsedNamespace(ctx, st, u); err != nil {
		return err
	}
	if err := st.CreateUpstream(ctx, u); err != nil {
		if berth.IsCode(err, berth.CodeConflict) {
			return berth.Errorf(berth.CodeConflict, "an upstream named %s, or one with namespace %s, exists already", u.Name, u.Namespace).
				WithHint("berth upstream list shows them; to change one's credential: berth upstream update %s --username USER --password-stdin", u.Name)
		}
		return err
	}
	h.changed(r, c, "upstream created", slog.String("upstream", u.Name), slog.String("url", u.URL), slog.String("namespace", u.Namespace),
		slog.Bool("credential", !u.Password.IsZero()))
	return writeJSON(w, http.StatusCreated, u)
}

// refuseUsedNamespace returns conflict when u's namespace is another
// upstream's, or holds a repository berth did not fill as a cache.
func (h *handler) refuseUsedNamespace(ctx context.Context, st UpstreamStore, u berth.Upstream) error {
	ups, err := st.FindUpstreams(ctx)
	if err != nil {
		return err
	}
	for _, o := range ups {
		if o.Namespace == u.Namespace {
			return berth.Errorf(berth.CodeConflict, "namespace %s is the cache namespace of upstream %s already", u.Namespace, o.Name).
				WithHint("choose another --namespace, or berth upstream delete %s first", o.Name)
		}
	}
	repos, err := h.cfg.Store.FindRepositories(ctx, u.Namespace+"/", 1)
	if err != nil {
		return err
	}
	if len(repos) == 1 && u.Holds(repos[0]) {
		return berth.Errorf(berth.CodeConflict, "namespace %s holds repositories, such as %s (pushed to berth, or cached by an upstream deleted since); as a cache namespace they could not be pushed to any more", u.Namespace, repos[0]).
			WithHint("to renew an upstream's credential, keep it: berth upstream update NAME --username USER --password-stdin; else choose another --namespace, such as %s-cache, or remove the repositories first: berth repo delete %s", u.Namespace, repos[0])
	}
	return nil
}

// parseTagTTL parses a --tag-ttl; "" is zero (the default).
func parseTagTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	ttl, err := berth.ParseLifetime(s, maxTagTTL)
	if err != nil {
		return 0, berth.Errorf(berth.CodeInvalid, "tag TTL %q is not a positive duration of at most %s", berth.Truncate(s, 40), berth.FormatLifetime(maxTagTTL)).
			WithHint("give a duration such as --tag-ttl 1h or --tag-ttl 1d")
	}
	return ttl, nil
}

// updateUpstream changes an upstream's URL, credential, tag TTL, size bound
// or recorded expiry, keeping its name, namespace and what it cached: the
// way to renew a credential, since a namespace holding cached repositories
// cannot be given to a new upstream.
//
// PATCH /api/v1/upstreams/{name} → the upstream, never its password. Needs
// owner on registry; invalid for what berth.NewUpstream refuses.
func (h *handler) updateUpstream(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "changing an upstream"); err != nil {
		return err
	}
	var req UpdateUpstreamRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	change := berth.UpstreamChange{URL: req.URL, Username: req.Username, Password: berth.UpstreamPasswordOf(req.Password),
		Anonymous: req.Anonymous, ExpiresAt: req.ExpiresAt}
	var err error
	if change.TagTTL, err = parseTagTTL(req.TagTTL); err != nil {
		return err
	}
	if req.MaxSize != "" {
		size, err := berth.ParseByteSize(req.MaxSize)
		if err != nil {
			return err
		}
		change.MaxSize = &size
	}
	old, err := h.upstreamByName(r)
	if berth.IsCode(err, berth.CodeInvalid) && old.Name != "" && change.NewCredential() {
		// The stored credential cannot be opened (sealed with a key this
		// server lacks, damaged): it is being replaced, so it is not needed.
		err = nil
	}
	if err != nil {
		return err
	}
	u, err := old.Change(change, h.now())
	if err != nil {
		return err
	}
	if err := h.cfg.Upstreams.UpdateUpstream(r.Context(), u); berth.IsCode(err, berth.CodeNotFound) {
		return berth.UpstreamUnknown(u.Name) // deleted meanwhile
	} else if err != nil {
		return err
	}
	h.changed(r, c, "upstream updated", slog.String("upstream", u.Name), slog.String("url", u.URL),
		slog.Bool("credential", !u.Password.IsZero()), slog.Bool("new_credential", change.NewCredential()))
	return writeJSON(w, http.StatusOK, u)
}

// listUpstreams lists every upstream, without passwords.
//
// GET /api/v1/upstreams. Needs owner on registry.
func (h *handler) listUpstreams(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "listing upstreams"); err != nil {
		return err
	}
	st, err := h.upstreams()
	if err != nil {
		return err
	}
	ups, err := st.FindUpstreams(r.Context())
	if err != nil {
		return err
	}
	if ups == nil {
		ups = []berth.Upstream{}
	}
	return writeJSON(w, http.StatusOK, UpstreamList{Upstreams: ups})
}

// showUpstream shows one upstream, without its password.
//
// GET /api/v1/upstreams/{name}. Needs owner on registry.
func (h *handler) showUpstream(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "reading an upstream"); err != nil {
		return err
	}
	u, err := h.upstreamByName(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

// deleteUpstream removes an upstream and its credential. What it cached
// stays, as ordinary repositories (berth repo delete removes them).
//
// DELETE /api/v1/upstreams/{name} → the upstream as it was. Needs owner on
// registry.
func (h *handler) deleteUpstream(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "deleting an upstream"); err != nil {
		return err
	}
	u, err := h.upstreamByName(r)
	if err != nil {
		return err
	}
	if err := h.cfg.Upstreams.DeleteUpstream(r.Context(), u.Name); err != nil {
		return err
	}
	h.changed(r, c, "upstream deleted", slog.String("upstream", u.Name), slog.String("namespace", u.Namespace))
	return writeJSON(w, http.StatusOK, u)
}

// verifyUpstream calls the upstream with its stored credential, as a pull
// through the cache would, and reports the outcome.
//
// GET /api/v1/upstreams/{name}/verify[?repository=REPO] → UpstreamCheck
// (200 whether or not the upstream accepts). Needs owner on registry.
func (h *handler) verifyUpstream(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "verifying an upstream"); err != nil {
		return err
	}
	u, err := h.upstreamByName(r)
	if err != nil {
		return err
	}
	if h.cfg.UpstreamVerifier == nil {
		return unavailable("verification of upstreams")
	}
	repo := r.URL.Query().Get("repository")
	if repo != "" {
		if err := berth.ValidateRepositoryName(repo); err != nil {
			return err
		}
	}
	now := h.cfg.Now()
	out := UpstreamCheck{Name: u.Name, URL: u.URL, ExpiresAt: u.ExpiresAt, CheckedAt: now.UTC()}
	if u.ExpiresAt != nil {
		d := int(u.ExpiresAt.Sub(now) / (24 * time.Hour))
		out.DaysLeft = &d
	}
	err = h.cfg.UpstreamVerifier.Verify(ctx, u, repo)
	if e := berth.AsError(err); e != nil {
		out.Reason, out.Message, out.Hint = e.Code, e.Message, e.Hint
	} else if err != nil {
		return err
	} else {
		out.OK = true
	}
	return writeJSON(w, http.StatusOK, out)
}
