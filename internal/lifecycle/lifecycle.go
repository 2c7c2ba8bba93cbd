package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// RulesTTL is how long an Enforcer trusts the rules it read: another
// replica's change takes effect within it; this process's own changes
// (Invalidate) at once.
const RulesTTL = 5 * time.Second

// Enforcer checks pushes and deletes against the immutable-tag rules and the
// quotas, and records tag pushes and manifest pulls. It is safe for
// concurrent use.
type Enforcer struct {
	Store berth.LifecycleStore
	Meta  berth.ManifestStore
	Now   func() time.Time
	// Logger hears of a pull batch it could not write.
	Logger *slog.Logger
	// Events, when set, hears quota.warning when a push takes a quota to 80
	// or 95% of its size.
	Events berth.EventPublisher

	mu        sync.Mutex
	read      time.Time // when the cached rules were read; zero: never
	immutable []berth.ImmutableRule
	quotas    []berth.Quota

	pullMu sync.Mutex
	pulls  map[pullKey]time.Time

	warnMu sync.Mutex
	warned map[berth.Scope]int // the last warning level sent per scope

	// reserveMu orders the commits that reserve quota, and reserved holds
	// what those checked but not yet linked add, per scope.
	reserveMu sync.Mutex
	reserved  map[berth.Scope]*reservation
}

// reservation is what the commits checked but not yet linked add to a
// quota's scope: bytes (a blob's once, however many commits of it are
// pending), and the new repositories they create (by name, with how many
// commits into each are pending).
type reservation struct {
	bytes int64
	blobs map[berth.Digest]*blobHold // pending commits per blob, whose size is in bytes once
	repos map[string]int
}

// blobHold is the commits of one blob pending in a scope, and the size the
// first of them reserved for all: a later commit shares it only when it
// claims no more (a commit's size is what its upload holds, checked against
// the digest only by the commit).
type blobHold struct {
	commits int
	size    int64
}

// held is what one commit reserved: bytes per scope (of a blob whose digest
// is not known), the scopes it holds blob d of size in, and the scopes it
// counts repo in as a new repository.
type held struct {
	repo  string
	d     berth.Digest
	size  int64
	bytes map[berth.Scope]int64
	blobs []berth.Scope
	repos []berth.Scope
}

type pullKey struct {
	repo string
	d    berth.Digest
}

// Invalidate makes the next check read the rules again.
func (e *Enforcer) Invalidate() {
	e.mu.Lock()
	e.read = time.Time{}
	e.mu.Unlock()
}

// rules returns the cached rules, read again when older than RulesTTL.
func (e *Enforcer) rules(ctx context.Context) ([]berth.ImmutableRule, []berth.Quota, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.Now()
	if !e.read.IsZero() && now.Sub(e.read) < RulesTTL && !now.Before(e.read) {
		return e.immutable, e.quotas, nil
	}
	imm, err := e.Store.FindImmutableRules(ctx)
	if err != nil {
		return nil, nil, err
	}
	q, err := e.Store.FindQuotas(ctx)
	if err != nil {
		return nil, nil, err
	}
	e.immutable, e.quotas, e.read = imm, q, now
	return imm, q, nil
}

// CheckTag returns tag_immutable when pointing repo:tag at d (or, for d "",
// deleting the tag) would move or remove a tag an immutable rule keeps.
// keep reports that the tag is immutable: a push must then store it with
// PutManifestKeepingTag, so that a push racing to create it cannot move it.
func (e *Enforcer) CheckTag(ctx context.Context, repo, tag string, d berth.Digest) (keep bool, err error) {
	imm, _, err := e.rules(ctx)
	if err != nil {
		return false, err
	}
	rule, ok := berth.ImmutableRuleFor(imm, repo, tag)
	if !ok {
		return false, nil
	}
	m, err := e.Meta.FindManifest(ctx, repo, tag)
	if berth.IsCode(err, berth.CodeManifestUnknown) || berth.IsCode(err, berth.CodeNameUnknown) {
		return true, nil // a new tag: its first push is allowed
	} else if err != nil {
		return true, err
	}
	if m.Digest == d {
		return true, nil // the same image again moves nothing
	}
	held, _ := e.Store.FindTagPush(ctx, repo, tag)
	action := "move"
	if d == "" {
		action = "delete"
	}
	return true, berth.TagImmutable(rule, repo, tag, m.Digest, held, action)
}

// CheckManifestDelete returns tag_immutable when deleting manifest d of repo
// would remove a tag an immutable rule keeps.
func (e *Enforcer) CheckManifestDelete(ctx context.Context, repo string, d berth.Digest) error {
	imm, _, err := e.rules(ctx)
	if err != nil || len(imm) == 0 {
		return err
	}
	images, err := e.Store.FindRetentionImages(ctx, repo)
	if err != nil {
		return err
	}
	for _, im := range images {
		if im.Digest != d {
			continue
		}
		for _, t := range im.Tags {
			if rule, ok := berth.ImmutableRuleFor(imm, repo, t.Tag); ok {
				return berth.TagImmutable(rule, repo, t.Tag, d, t, "delete the manifest holding")
			}
		}
	}
	return nil
}

// QuotaCovers reports whether a quota covers repo.
func (e *Enforcer) QuotaCovers(ctx context.Context, repo string) (bool, error) {
	_, quotas, err := e.rules(ctx)
	if err != nil {
		return false, err
	}
	return len(berth.QuotasFor(quotas, repo)) > 0, nil
}

// CheckQuota returns quota_exceeded when linking blob d of size bytes into
// repo goes beyond a quota covering repo. A blob a scope already holds adds
// nothing to it; d "" is a blob whose digest is not known yet (a chunk),
// counted in full.
func (e *Enforcer) CheckQuota(ctx context.Context, repo string, d berth.Digest, size int64) error {
	_, err := e.checkQuota(ctx, repo, d, size, nil)
	return err
}

// ReserveQuota is CheckQuota for a commit: the bytes it lets in, and the
// repository when the commit creates it, count against their quotas for
// the commits of this process that check after it, until release is
// called (once the blob is linked, or the commit failed). Two pushes racing
// into the last bytes of a quota, or into its last repository, so cannot
// both pass. Replicas do not see each other's reservations.
func (e *Enforcer) ReserveQuota(ctx context.Context, repo string, d berth.Digest, size int64) (release func(), err error) {
	e.reserveMu.Lock()
	defer e.reserveMu.Unlock()
	if e.reserved == nil {
		e.reserved = map[berth.Scope]*reservation{}
	}
	h, err := e.checkQuota(ctx, repo, d, size, e.reserved)
	if err != nil {
		return func() {}, err
	}
	e.reserve(h)
	var once sync.Once
	return func() { once.Do(func() { e.unreserve(h) }) }, nil
}

// reserve adds h to e.reserved; e.reserveMu is held.
func (e *Enforcer) reserve(h held) {
	at := func(sc berth.Scope) *reservation {
		r := e.reserved[sc]
		if r == nil {
			r = &reservation{blobs: map[berth.Digest]*blobHold{}, repos: map[string]int{}}
			e.reserved[sc] = r
		}
		return r
	}
	for sc, n := range h.bytes {
		at(sc).bytes += n
	}
	for _, sc := range h.blobs {
		r := at(sc)
		b := r.blobs[h.d]
		if b == nil {
			b = &blobHold{size: h.size}
			r.blobs[h.d] = b
			r.bytes += h.size
		}
		b.commits++
	}
	for _, sc := range h.repos {
		at(sc).repos[h.repo]++
	}
}

// unreserve takes h back out of e.reserved.
func (e *Enforcer) unreserve(h held) {
	e.reserveMu.Lock()
	defer e.reserveMu.Unlock()
	for sc, n := range h.bytes {
		if r := e.reserved[sc]; r != nil {
			r.bytes -= n
		}
	}
	for _, sc := range h.blobs {
		if r := e.reserved[sc]; r != nil {
			if b := r.blobs[h.d]; b != nil {
				if b.commits--; b.commits <= 0 {
					delete(r.blobs, h.d)
					r.bytes -= b.size
				}
			}
		}
	}
	for _, sc := range h.repos {
		if r := e.reserved[sc]; r != nil {
			if r.repos[h.repo]--; r.repos[h.repo] <= 0 {
				delete(r.repos, h.repo)
			}
		}
	}
	for sc := range h.bytes {
		e.dropEmpty(sc)
	}
	for _, sc := range h.blobs {
		e.dropEmpty(sc)
	}
	for _, sc := range h.repos {
		e.dropEmpty(sc)
	}
}

// dropEmpty forgets sc's reservation once nothing is reserved there;
// e.reserveMu is held.
func (e *Enforcer) dropEmpty(sc berth.Scope) {
	if r := e.reserved[sc]; r != nil && r.bytes <= 0 && len(r.blobs) == 0 && len(r.repos) == 0 {
		delete(e.reserved, sc)
	}
}

// checkQuota checks, counting what reserved holds per scope as used when
// it is not nil, and returns what the blob adds to each quota's scope.
func (e *Enforcer) checkQuota(ctx context.Context, repo string, d berth.Digest, size int64, reserved map[berth.Scope]*reservation) (held, error) {
	h := held{repo: repo, d: d, size: size}
	_, quotas, err := e.rules(ctx)
	covering := berth.QuotasFor(quotas, repo)
	if err != nil || len(covering) == 0 {
		return h, err
	}
	newRepo := false
	if _, err := e.Meta.FindTags(ctx, repo, "", 0); berth.IsCode(err, berth.CodeNameUnknown) {
		newRepo = true
	} else if err != nil {
		return h, err
	}
	for _, q := range covering {
		adding := size
		if d != "" {
			inScope, err := e.Store.ScopeHoldsBlob(ctx, q.Scope, d)
			if err != nil {
				return h, err
			}
			if inScope {
				adding = 0
			}
		}
		r := reserved[q.Scope] // commits checked before, not linked yet
		if d != "" && adding > 0 && r != nil && r.blobs[d] != nil && size <= r.blobs[d].size {
			// Another commit of the blob reserved its bytes: they stay
			// reserved while this one is pending too.
			adding = 0
			h.blobs = append(h.blobs, q.Scope)
		}
		if adding == 0 && !newRepo {
			continue
		}
		usage, err := e.Store.QuotaUsage(ctx, q.Scope)
		if err != nil {
			return h, err
		}
		creates := newRepo
		if r != nil {
			usage.Bytes += r.bytes
			usage.Repositories += len(r.repos)
			if r.repos[repo] > 0 {
				creates = false // counted already, as another commit's
			}
		}
		if q.Exceeds(usage, adding, creates) {
			return h, berth.QuotaExceeded(q, usage, repo, adding, creates)
		}
		e.warn(ctx, q, usage.Bytes+adding, repo)
		switch {
		case adding > 0 && d != "" && (r == nil || r.blobs[d] == nil):
			h.blobs = append(h.blobs, q.Scope) // the blob's first pending commit
		case adding > 0:
			if h.bytes == nil {
				h.bytes = map[berth.Scope]int64{}
			}
			h.bytes[q.Scope] += adding
		}
		if newRepo {
			h.repos = append(h.repos, q.Scope)
		}
	}
	return h, nil
}

// warn publishes quota.warning when usage reaches a level of q above the
// last one sent for its scope; a level falls back as usage does.
func (e *Enforcer) warn(ctx context.Context, q berth.Quota, usage int64, repo string) {
	level := berth.QuotaWarningLevel(usage, q.MaxSize)
	e.warnMu.Lock()
	if e.warned == nil {
		e.warned = map[berth.Scope]int{}
	}
	last := e.warned[q.Scope]
	e.warned[q.Scope] = level
	e.warnMu.Unlock()
	if level > last && e.Events != nil {
		e.Events.Publish(ctx, berth.QuotaWarningEvent(berth.QuotaEventData{Scope: q.Scope, Percent: level,
			LimitBytes: q.MaxSize, UsageBytes: usage, Repository: repo}))
	}
}

// TagPushed records who pushed repo:tag at d. A failure is logged, not
// returned: the push itself succeeded.
func (e *Enforcer) TagPushed(ctx context.Context, p berth.TagPush) {
	if err := e.Store.RecordTagPush(ctx, p); err != nil && e.Logger != nil {
		e.Logger.Warn("lifecycle: record tag push", "repository", p.Repository, "tag", p.Tag, "err", err)
	}
}

// Pulled notes that manifest d of repo was pulled now; Flush writes the
// notes in one transaction.
func (e *Enforcer) Pulled(repo string, d berth.Digest) {
	now := e.Now()
	e.pullMu.Lock()
	if e.pulls == nil {
		e.pulls = map[pullKey]time.Time{}
	}
	e.pulls[pullKey{repo, d}] = now
	e.pullMu.Unlock()
}

// Flush writes the pulls noted since the last Flush. On failure they are
// kept for the next one.
func (e *Enforcer) Flush(ctx context.Context) error {
	e.pullMu.Lock()
	batch := e.pulls
	e.pulls = nil
	e.pullMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	pulls := make([]berth.ManifestPull, 0, len(batch))
	for k, t := range batch {
		pulls = append(pulls, berth.ManifestPull{Repository: k.repo, Digest: k.d, Time: t})
	}
	if err := e.Store.RecordPulls(ctx, pulls); err != nil {
		e.pullMu.Lock()
		if e.pulls == nil {
			e.pulls = map[pullKey]time.Time{}
		}
		for k, t := range batch {
			if t.After(e.pulls[k]) {
				e.pulls[k] = t
			}
		}
		e.pullMu.Unlock()
		return err
	}
	return nil
}

// RunFlusher flushes every interval until ctx ends, then once more.
func (e *Enforcer) RunFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := e.Flush(context.WithoutCancel(ctx)); err != nil && e.Logger != nil {
				e.Logger.Warn("lifecycle: record pulls", "err", err)
			}
			return
		case <-t.C:
			if err := e.Flush(ctx); err != nil && e.Logger != nil {
				e.Logger.Warn("lifecycle: record pulls", "err", err)
			}
		}
	}
}
