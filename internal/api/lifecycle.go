package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth"
)

// Lifecycle rules (retention, immutable tags, quotas) under
// /api/v1/retention, /api/v1/immutable and /api/v1/quotas. A rule on a scope
// may be set, read and removed by an owner of a scope containing it, as a
// role on it may be assigned; lists show the rules the caller may manage.

// Lifecycle is what the lifecycle endpoints need: the rules' store, the
// retention runner, and Changed, called after every change so that the
// registry's cached rules count on the next push.
type Lifecycle struct {
	Store     berth.LifecycleStore
	Retention *berth.Retention
	Changed   func()
}

// RetentionRequest is the body of POST /api/v1/retention. Durations are
// written as berth reads lifetimes: "30d", "12h".
type RetentionRequest struct {
	Scope            string `json:"scope"`
	KeepLast         int    `json:"keep_last"`
	Tags             string `json:"tags,omitempty"`
	KeepTags         string `json:"keep_tags,omitempty"`
	KeepPulledWithin string `json:"keep_pulled_within,omitempty"`
	UntaggedAfter    string `json:"untagged_after,omitempty"`
}

// RetentionList is the answer of GET /api/v1/retention.
type RetentionList struct {
	Rules []berth.RetentionRule `json:"rules"`
}

// RetentionRunRequest is the body of POST /api/v1/retention/run: the scope
// whose repositories to apply the rules to ("" for every repository).
type RetentionRunRequest struct {
	Scope  string `json:"scope,omitempty"`
	DryRun bool   `json:"dry_run"`
}

// RetentionRun is its answer: what was deleted, or with DryRun would be.
type RetentionRun struct {
	DryRun    bool                      `json:"dry_run"`
	Deletions []berth.RetentionDeletion `json:"deletions"`
	Bytes     int64                     `json:"bytes"`
}

// ImmutableRequest is the body of POST /api/v1/immutable.
type ImmutableRequest struct {
	Scope string `json:"scope"`
	Tags  string `json:"tags"`
}

// ImmutableList is the answer of GET /api/v1/immutable.
type ImmutableList struct {
	Rules []berth.ImmutableRule `json:"rules"`
}

// QuotaRequest is the body of POST /api/v1/quotas. MaxSize is in bytes or
// with a unit ("50GiB"). A bound not given keeps the value the scope's
// quota has; 0 removes it.
type QuotaRequest struct {
	Scope           string `json:"scope"`
	MaxSize         string `json:"max_size,omitempty"`
	MaxRepositories *int   `json:"max_repositories,omitempty"`
}

// QuotaStatus is a quota with what its scope holds now.
type QuotaStatus struct {
	berth.Quota
	Usage berth.QuotaUsage `json:"usage"`
}

// QuotaList is the answer of GET /api/v1/quotas.
type QuotaList struct {
	Quotas []QuotaStatus `json:"quotas"`
}

func (h *handler) routeLifecycle() {
	h.handle("POST /api/v1/retention", h.setRetention)
	h.handle("GET /api/v1/retention", h.listRetention)
	h.handle("POST /api/v1/retention/run", h.runRetention)
	h.handle("GET /api/v1/retention/{scope...}", h.showRetention)
	h.handle("DELETE /api/v1/retention/{scope...}", h.deleteRetention)
	h.handle("POST /api/v1/immutable", h.addImmutable)
	h.handle("GET /api/v1/immutable", h.listImmutable)
	h.handle("DELETE /api/v1/immutable", h.removeImmutable)
	h.handle("POST /api/v1/quotas", h.setQuota)
	h.handle("GET /api/v1/quotas", h.listQuotas)
	h.handle("DELETE /api/v1/quotas/{scope...}", h.deleteQuota)
}

// lifecycle returns the lifecycle dependencies, or the refusal of a server
// built without them.
func (h *handler) lifecycle() (*Lifecycle, error) {
	if h.cfg.Lifecycle == nil || h.cfg.Lifecycle.Store == nil {
		return nil, unavailable("lifecycle rules")
	}
	return h.cfg.Lifecycle, nil
}

// lifecycleChanged tells the registry the rules changed and records it.
func (h *handler) lifecycleChanged(r *http.Request, c *berth.Caller, target, change string) {
	noteTarget(r, target)
	noteDetail(r, "change", change)
	if h.cfg.Lifecycle.Changed != nil {
		h.cfg.Lifecycle.Changed()
	}
	h.changed(r, c, "lifecycle rule "+change, slog.String("rule", target))
}

// manageScope parses s and checks that c may manage rules on it.
func (h *handler) manageScope(ctx context.Context, c *berth.Caller, s, doing string) (berth.Scope, error) {
	scope, err := berth.ParseScope(s)
	if err != nil {
		return berth.Scope{}, err
	}
	return scope, h.requireAssign(ctx, c, scope, doing+" on "+scope.String())
}

// mayManage reports whether c may manage rules on scope, for lists.
func (h *handler) mayManage(ctx context.Context, c *berth.Caller, scope berth.Scope) bool {
	return h.requireAssign(ctx, c, scope, "") == nil
}

func parseRuleDuration(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := berth.ParseLifetime(s, 100*365*24*time.Hour)
	if err != nil {
		return 0, berth.Errorf(berth.CodeInvalid, "%s %q is not a positive duration", flag, berth.Truncate(s, 40)).
			WithHint("give a duration such as 30d, 12h or 90m (1s counts every image at the next run); leave the flag out for no such rule")
	}
	return d, nil
}

// setRetention is POST /api/v1/retention: it sets the rule on a scope,
// replacing the one there.
func (h *handler) setRetention(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	var req RetentionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, req.Scope, "setting a retention rule")
	if err != nil {
		return err
	}
	rule := berth.RetentionRule{Scope: scope, KeepLast: req.KeepLast, Tags: req.Tags, KeepTags: req.KeepTags, Updated: h.now(), UpdatedBy: c.Actor.Name}
	if rule.KeepPulledWithin, err = parseRuleDuration("keep_pulled_within", req.KeepPulledWithin); err != nil {
		return err
	}
	if rule.UntaggedAfter, err = parseRuleDuration("untagged_after", req.UntaggedAfter); err != nil {
		return err
	}
	if err := berth.ValidateRetentionRule(rule); err != nil {
		return err
	}
	if err := lc.Store.PutRetentionRule(r.Context(), rule); err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "retention "+scope.String(), "set")
	return writeJSON(w, http.StatusOK, rule)
}

// listRetention is GET /api/v1/retention.
func (h *handler) listRetention(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	rules, err := lc.Store.FindRetentionRules(r.Context())
	if err != nil {
		return err
	}
	out := RetentionList{Rules: []berth.RetentionRule{}}
	for _, rule := range rules {
		if h.mayManage(r.Context(), c, rule.Scope) {
			out.Rules = append(out.Rules, rule)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// showRetention is GET /api/v1/retention/{scope...}.
func (h *handler) showRetention(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, r.PathValue("scope"), "reading a retention rule")
	if err != nil {
		return err
	}
	rules, err := lc.Store.FindRetentionRules(r.Context())
	if err != nil {
		return err
	}
	for _, rule := range rules {
		if rule.Scope == scope {
			return writeJSON(w, http.StatusOK, rule)
		}
	}
	return retentionNotFound(scope)
}

func retentionNotFound(scope berth.Scope) error {
	return berth.Errorf(berth.CodeNotFound, "no retention rule is set on %s", scope).
		WithHint("berth retention list shows the rules; berth retention set %s --keep-last N sets one", scope)
}

// deleteRetention is DELETE /api/v1/retention/{scope...}.
func (h *handler) deleteRetention(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, r.PathValue("scope"), "deleting a retention rule")
	if err != nil {
		return err
	}
	if err := lc.Store.DeleteRetentionRule(r.Context(), scope); berth.IsCode(err, berth.CodeNotFound) {
		return retentionNotFound(scope)
	} else if err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "retention "+scope.String(), "delete")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// runRetention is POST /api/v1/retention/run: it applies the rules to the
// repositories of a scope now, or with dry_run says what that would delete.
// It needs owner on the scope (on the registry when none is given).
func (h *handler) runRetention(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	var req RetentionRunRequest
	if err := decodeOptional(w, r, &req); err != nil {
		return err
	}
	if req.Scope == "" {
		req.Scope = "registry"
	}
	scope, err := h.manageScope(r.Context(), c, req.Scope, "running retention")
	if err != nil {
		return err
	}
	noteTarget(r, "retention "+scope.String())
	noteDetail(r, "dry_run", strconv.FormatBool(req.DryRun))
	deletions, err := lc.Retention.Run(r.Context(), scope, h.now(), req.DryRun)
	// A run that failed midway may have deleted some: its audit event says
	// how many.
	noteDetail(r, "deleted", strconv.Itoa(len(deletions)))
	out := RetentionRun{DryRun: req.DryRun, Deletions: deletions}
	if out.Deletions == nil {
		out.Deletions = []berth.RetentionDeletion{}
	}
	for _, d := range deletions {
		out.Bytes += d.Size
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// addImmutable is POST /api/v1/immutable.
func (h *handler) addImmutable(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	var req ImmutableRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, req.Scope, "adding an immutable-tag rule")
	if err != nil {
		return err
	}
	rule := berth.ImmutableRule{Scope: scope, Tags: req.Tags, Created: h.now(), CreatedBy: c.Actor.Name}
	if err := berth.ValidateImmutableRule(rule); err != nil {
		return err
	}
	if err := lc.Store.PutImmutableRule(r.Context(), rule); berth.IsCode(err, berth.CodeConflict) {
		return berth.Errorf(berth.CodeConflict, "tags %q are already immutable on %s", req.Tags, scope).WithHint("berth immutable list")
	} else if err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "immutable "+scope.String()+" "+req.Tags, "set")
	return writeJSON(w, http.StatusCreated, rule)
}

// listImmutable is GET /api/v1/immutable.
func (h *handler) listImmutable(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	rules, err := lc.Store.FindImmutableRules(r.Context())
	if err != nil {
		return err
	}
	out := ImmutableList{Rules: []berth.ImmutableRule{}}
	for _, rule := range rules {
		if h.mayManage(r.Context(), c, rule.Scope) {
			out.Rules = append(out.Rules, rule)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// removeImmutable is DELETE /api/v1/immutable?scope=S&tags=P.
func (h *handler) removeImmutable(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	scope, err := h.manageScope(r.Context(), c, q.Get("scope"), "removing an immutable-tag rule")
	if err != nil {
		return err
	}
	tags := q.Get("tags")
	if err := lc.Store.DeleteImmutableRule(r.Context(), scope, tags); berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "no immutable-tag rule on %s has the pattern %q", scope, berth.Truncate(tags, 140)).WithHint("berth immutable list")
	} else if err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "immutable "+scope.String()+" "+tags, "delete")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setQuota is POST /api/v1/quotas: it sets the quota on a scope, replacing
// the one there.
func (h *handler) setQuota(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	var req QuotaRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, req.Scope, "setting a quota")
	if err != nil {
		return err
	}
	change := berth.QuotaChange{MaxRepositories: req.MaxRepositories}
	if req.MaxSize != "" {
		size, err := berth.ParseByteSize(req.MaxSize)
		if err != nil {
			return err
		}
		change.MaxSize = &size
	}
	q := berth.Quota{Scope: scope}
	quotas, err := lc.Store.FindQuotas(r.Context())
	if err != nil {
		return err
	}
	for _, old := range quotas {
		if old.Scope == scope {
			q = old
		}
	}
	q = q.With(change)
	q.Updated, q.UpdatedBy = h.now(), c.Actor.Name
	if err := berth.ValidateQuota(q); err != nil {
		return err
	}
	if err := lc.Store.PutQuota(r.Context(), q); err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "quota "+scope.String(), "set")
	usage, err := lc.Store.QuotaUsage(r.Context(), scope)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, QuotaStatus{Quota: q, Usage: usage})
}

// listQuotas is GET /api/v1/quotas, each with its usage.
func (h *handler) listQuotas(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	quotas, err := lc.Store.FindQuotas(r.Context())
	if err != nil {
		return err
	}
	out := QuotaList{Quotas: []QuotaStatus{}}
	for _, q := range quotas {
		if !h.mayManage(r.Context(), c, q.Scope) {
			continue
		}
		usage, err := lc.Store.QuotaUsage(r.Context(), q.Scope)
		if err != nil {
			return err
		}
		out.Quotas = append(out.Quotas, QuotaStatus{Quota: q, Usage: usage})
	}
	return writeJSON(w, http.StatusOK, out)
}

// deleteQuota is DELETE /api/v1/quotas/{scope...}.
func (h *handler) deleteQuota(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	lc, err := h.lifecycle()
	if err != nil {
		return err
	}
	scope, err := h.manageScope(r.Context(), c, r.PathValue("scope"), "removing a quota")
	if err != nil {
		return err
	}
	if err := lc.Store.DeleteQuota(r.Context(), scope); berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "no quota is set on %s", scope).WithHint("berth quota list")
	} else if err != nil {
		return err
	}
	h.lifecycleChanged(r, c, "quota "+scope.String(), "delete")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
