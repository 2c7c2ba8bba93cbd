package berth

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Lifecycle rules are written on scopes, as role assignments are: the
// registry, a namespace ("team/*") or one repository. Where rules of one kind
// on several scopes cover a repository, immutability and quotas add up (every
// rule holds), while retention takes the most specific rule: a repository's
// own rule, else its nearest namespace's, else the registry's.

// ImmutableRule keeps every tag matching Tags in Scope where it points: a
// push that would move such a tag, or a delete that would remove it, is
// refused with tag_immutable. A tag that does not exist yet may be pushed.
type ImmutableRule struct {
	Scope Scope `json:"scope"`
	// Tags is a pattern MatchPattern reads: "v*", "release-*", "latest".
	Tags      string    `json:"tags"`
	Created   time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// ValidateImmutableRule returns invalid unless r has a scope and a pattern.
func ValidateImmutableRule(r ImmutableRule) error {
	if r.Scope.IsZero() {
		return Errorf(CodeInvalid, "an immutable-tag rule needs a scope").WithHint("berth immutable add team/* --tags 'v*'")
	}
	return validateTagPattern("--tags", r.Tags)
}

// validateTagPattern accepts a tag pattern: the tag grammar with '*'.
func validateTagPattern(flag, p string) error {
	if p == "" {
		return Errorf(CodeInvalid, "the %s pattern is empty", flag).WithHint("give a tag or a pattern with *, such as %s 'v*'", flag)
	}
	if ValidateTag(strings.ReplaceAll(p, "*", "x")) != nil {
		return Errorf(CodeInvalid, "the %s pattern %q cannot match a tag: a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'", flag, Truncate(p, 140)).
			WithHint("give a pattern such as %s 'v*' or %s 'release-*'", flag, flag)
	}
	return nil
}

// ImmutableRuleFor returns the first of rules that covers repo and whose
// pattern matches tag, and whether there is one.
func ImmutableRuleFor(rules []ImmutableRule, repo, tag string) (ImmutableRule, bool) {
	for _, r := range rules {
		if r.Scope.Covers(repo) && MatchPattern(r.Tags, tag) {
			return r, true
		}
	}
	return ImmutableRule{}, false
}

// TagPush records who last pointed a tag at its digest, and when.
type TagPush struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     Digest    `json:"digest"`
	Pushed     time.Time `json:"pushed_at"`
	PushedBy   string    `json:"pushed_by,omitempty"`
}

// TagImmutable is the refusal of a push or delete that would move or remove
// tag, which rule keeps where it is. held says what the tag holds, and is
// zero when berth has no record of its push (the tag predates the record).
func TagImmutable(rule ImmutableRule, repo, tag string, current Digest, held TagPush, action string) *Error {
	facts := fmt.Sprintf("tag %s:%s is immutable (rule %s --tags %s) and holds %s", repo, tag, rule.Scope, rule.Tags, current)
	if !held.Pushed.IsZero() && held.Digest == current {
		facts += fmt.Sprintf(", pushed %s", held.Pushed.UTC().Format(time.RFC3339))
		if held.PushedBy != "" {
			facts += " by " + held.PushedBy
		}
	}
	hint := "push under a new tag instead, or an owner removes the rule"
	if action != "move" {
		hint = "an immutable tag is kept on purpose; to delete it all the same, an owner removes the rule first"
	}
	return Errorf(CodeTagImmutable, "%s; berth refuses to %s it", facts, action).
		WithHint("%s: berth immutable remove %s --tags %s", hint, ShellQuote(rule.Scope.String()), ShellQuote(rule.Tags)).
		WithDetail("digest", current.String()).WithDetail("rule", rule.Scope.String()+" "+rule.Tags)
}

// RetentionRule says which images of the repositories in Scope to keep; the
// others are deleted when rules run (on the GC schedule, or berth retention
// run). An image is one manifest with its tags.
type RetentionRule struct {
	Scope Scope `json:"scope"`
	// KeepLast keeps the N tagged images most recently pushed (by the push
	// time of their newest tag that Tags selects). 0 keeps none by count.
	KeepLast int `json:"keep_last"`
	// Tags selects the tags the rule ranks and deletes ("" for every tag);
	// an image with a tag outside it is kept.
	Tags string `json:"tags,omitempty"`
	// KeepTags protects the images holding a matching tag ("" for none).
	KeepTags string `json:"keep_tags,omitempty"`
	// KeepPulledWithin keeps images pulled within this long (0: no such
	// protection).
	KeepPulledWithin time.Duration `json:"keep_pulled_within,omitempty"`
	// UntaggedAfter deletes untagged images pushed longer ago than this (0:
	// untagged images are kept).
	UntaggedAfter time.Duration `json:"untagged_after,omitempty"`
	Updated       time.Time     `json:"updated_at"`
	UpdatedBy     string        `json:"updated_by,omitempty"`
}

// ValidateRetentionRule returns invalid unless r has a scope, sensible numbers
// and valid patterns.
func ValidateRetentionRule(r RetentionRule) error {
	switch {
	case r.Scope.IsZero():
		return Errorf(CodeInvalid, "a retention rule needs a scope").WithHint("berth retention set team/* --keep-last 20")
	case r.KeepLast < 0:
		return Errorf(CodeInvalid, "--keep-last is %d; it counts images to keep, 0 or more", r.KeepLast)
	case r.KeepPulledWithin < 0 || r.UntaggedAfter < 0:
		return Errorf(CodeInvalid, "--keep-pulled-within and --untagged-after are durations after now, not before it")
	}
	if r.Tags != "" {
		if err := validateTagPattern("--tags", r.Tags); err != nil {
			return err
		}
	}
	if r.KeepTags != "" {
		if err := validateTagPattern("--keep-tags", r.KeepTags); err != nil {
			return err
		}
	}
	return nil
}

// RetentionRuleFor returns the most specific rule of rules covering repo: the
// repository's own, else the longest namespace's, else the registry's.
func RetentionRuleFor(rules []RetentionRule, repo string) (RetentionRule, bool) {
	best, rank := RetentionRule{}, -1
	for _, r := range rules {
		if !r.Scope.Covers(repo) {
			continue
		}
		n := 0
		switch r.Scope.Kind() {
		case ScopeRepository:
			n = 1 << 20
		case ScopeNamespace:
			n = len(r.Scope.Name()) + 1
		}
		if n > rank {
			best, rank = r, n
		}
	}
	return best, rank >= 0
}

// RetentionImage is what retention knows of one manifest of a repository.
type RetentionImage struct {
	Digest Digest
	// Size is the manifest's bytes plus those of every blob it references.
	Size    int64
	Created time.Time
	// Tags are the tags pointing at the image, with their push times.
	Tags []TagPush
	// LastPulled is zero when no pull was recorded.
	LastPulled time.Time
	// Subject is the digest the image refers to (a signature, an SBOM), or "".
	Subject Digest
	// Children are the manifests an index lists.
	Children []Digest
}

// RetentionDeletion is one manifest a rule deletes, and why.
type RetentionDeletion struct {
	Repository string   `json:"repository"`
	Digest     Digest   `json:"digest"`
	Tags       []string `json:"tags"`
	Size       int64    `json:"size"`
	Reason     string   `json:"reason"`
	Rule       string   `json:"rule"`
}

// PlanRetention returns which of images (those of repo) rule deletes at now,
// oldest first except that an image comes after the planned images that need
// it, and never an image that holds an immutable tag: a tagged
// image outside the newest KeepLast, unless a tag outside rule.Tags or
// matching KeepTags protects it or it was pulled within KeepPulledWithin; an
// untagged image older than UntaggedAfter; and with each deleted image, the
// images referring to it (signatures, SBOMs) and the untagged children of a
// deleted index. An image a kept image needs (an index's child, a referrer's
// subject) is kept.
func PlanRetention(rule RetentionRule, repo string, images []RetentionImage, immutable []ImmutableRule, now time.Time) []RetentionDeletion {
	byDigest := make(map[Digest]*RetentionImage, len(images))
	for i := range images {
		byDigest[images[i].Digest] = &images[i]
	}
	ruleText := retentionRuleText(rule)
	reason := map[Digest]string{}
	pulledRecently := func(im *RetentionImage) bool {
		return rule.KeepPulledWithin > 0 && !im.LastPulled.IsZero() && now.Sub(im.LastPulled) < rule.KeepPulledWithin
	}

	// Rank the tagged images whose every tag the rule selects.
	type ranked struct {
		im     *RetentionImage
		newest time.Time
	}
	var candidates []ranked
	for i := range images {
		im := &images[i]
		if len(im.Tags) == 0 {
			if rule.UntaggedAfter > 0 && now.Sub(im.Created) > rule.UntaggedAfter && im.Subject == "" && !pulledRecently(im) {
				reason[im.Digest] = fmt.Sprintf("untagged, pushed %s, more than %s ago", im.Created.UTC().Format(time.RFC3339), FormatLifetime(rule.UntaggedAfter))
			}
			continue
		}
		newest := time.Time{}
		for _, t := range im.Tags {
			if t.Pushed.After(newest) {
				newest = t.Pushed
			}
		}
		if !holdsProtectedTag(im, rule, repo, immutable) {
			candidates = append(candidates, ranked{im, newest})
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		if !candidates[i].newest.Equal(candidates[j].newest) {
			return candidates[i].newest.After(candidates[j].newest)
		}
		return candidates[i].im.Digest < candidates[j].im.Digest
	})
	for i, c := range candidates {
		if i < rule.KeepLast || pulledRecently(c.im) {
			continue
		}
		reason[c.im.Digest] = fmt.Sprintf("not among the %d most recently pushed images (tag pushed %s)", rule.KeepLast, c.newest.UTC().Format(time.RFC3339))
	}

	// Referrers and untagged children go with what they belong to; then
	// whatever a kept image still needs stays. Repeat until nothing changes.
	for changed := true; changed; {
		changed = false
		for i := range images {
			im := &images[i]
			if _, gone := reason[im.Digest]; gone {
				for _, c := range im.Children {
					if child := byDigest[c]; child != nil && len(child.Tags) == 0 && reason[c] == "" {
						reason[c], changed = "a child of deleted index "+im.Digest.String(), true
					}
				}
				continue
			}
			if im.Subject != "" && reason[im.Subject] != "" {
				if len(im.Tags) == 0 || !holdsProtectedTag(im, rule, repo, immutable) {
					reason[im.Digest], changed = "refers to deleted "+im.Subject.String(), true
				}
			}
		}
		for i := range images {
			im := &images[i]
			if _, gone := reason[im.Digest]; gone {
				continue
			}
			need := append([]Digest(nil), im.Children...)
			if im.Subject != "" {
				need = append(need, im.Subject)
			}
			for _, d := range need {
				if reason[d] != "" {
					delete(reason, d)
					changed = true
				}
			}
		}
	}

	var out []RetentionDeletion
	for i := range images {
		im := &images[i]
		why, gone := reason[im.Digest]
		if !gone {
			continue
		}
		tags := make([]string, len(im.Tags))
		for j, t := range im.Tags {
			tags[j] = t.Tag
		}
		sort.Strings(tags)
		out = append(out, RetentionDeletion{Repository: repo, Digest: im.Digest, Tags: tags, Size: im.Size, Reason: why, Rule: ruleText})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := byDigest[out[i].Digest], byDigest[out[j].Digest]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Digest < b.Digest
	})
	return referrersFirst(out, byDigest)
}

// referrersFirst orders plan so that an image comes after every planned
// image that needs it (an index listing it, a referrer naming it): deleting
// in this order, each deletion finds nothing left that needs it.
func referrersFirst(plan []RetentionDeletion, byDigest map[Digest]*RetentionImage) []RetentionDeletion {
	needers := map[Digest][]int{}
	for i, d := range plan {
		im := byDigest[d.Digest]
		if im.Subject != "" {
			needers[im.Subject] = append(needers[im.Subject], i)
		}
		for _, c := range im.Children {
			needers[c] = append(needers[c], i)
		}
	}
	out := make([]RetentionDeletion, 0, len(plan))
	done := make([]bool, len(plan))
	var emit func(i int)
	emit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		for _, j := range needers[plan[i].Digest] {
			emit(j)
		}
		out = append(out, plan[i])
	}
	for i := range plan {
		emit(i)
	}
	return out
}

func holdsProtectedTag(im *RetentionImage, rule RetentionRule, repo string, immutable []ImmutableRule) bool {
	for _, t := range im.Tags {
		if rule.Tags != "" && !MatchPattern(rule.Tags, t.Tag) || rule.KeepTags != "" && MatchPattern(rule.KeepTags, t.Tag) {
			return true
		}
		if _, ok := ImmutableRuleFor(immutable, repo, t.Tag); ok {
			return true
		}
	}
	return false
}

// retentionRuleText names a rule in audit events and plans, as its command.
func retentionRuleText(r RetentionRule) string {
	return r.Scope.String() + " " + r.Flags()
}

// Flags writes the rule as the flags of berth retention set that make it.
func (r RetentionRule) Flags() string {
	s := fmt.Sprintf("--keep-last %d", r.KeepLast)
	if r.Tags != "" {
		s += " --tags '" + r.Tags + "'"
	}
	if r.KeepTags != "" {
		s += " --keep-tags '" + r.KeepTags + "'"
	}
	if r.KeepPulledWithin > 0 {
		s += " --keep-pulled-within " + FormatLifetime(r.KeepPulledWithin)
	}
	if r.UntaggedAfter > 0 {
		s += " --untagged-after " + FormatLifetime(r.UntaggedAfter)
	}
	return s
}

// Quota bounds what the repositories of Scope hold together.
type Quota struct {
	Scope Scope `json:"scope"`
	// MaxSize bounds the bytes of the distinct blobs (layers, configs) the
	// scope's repositories link, each counted once however many share it; 0
	// is no bound.
	MaxSize int64 `json:"max_size,omitempty"`
	// MaxRepositories bounds how many repositories the scope holds; 0 is no
	// bound.
	MaxRepositories int       `json:"max_repositories,omitempty"`
	Updated         time.Time `json:"updated_at"`
	UpdatedBy       string    `json:"updated_by,omitempty"`
}

// QuotasFor returns the quotas that cover repo: every one binds a push
// into it, from the registry's down to the repository's own.
func QuotasFor(quotas []Quota, repo string) []Quota {
	var out []Quota
	for _, q := range quotas {
		if q.Scope.Covers(repo) {
			out = append(out, q)
		}
	}
	return out
}

// QuotaUsage is what a scope holds.
type QuotaUsage struct {
	Bytes        int64 `json:"bytes"`
	Repositories int   `json:"repositories"`
}

// QuotaChange changes a quota's bounds: a nil bound keeps its value, 0
// removes the bound.
type QuotaChange struct {
	MaxSize         *int64
	MaxRepositories *int
}

// With returns q (the zero Quota of its scope for a new one) with c's
// bounds; what c does not give keeps its value.
func (q Quota) With(c QuotaChange) Quota {
	if c.MaxSize != nil {
		q.MaxSize = *c.MaxSize
	}
	if c.MaxRepositories != nil {
		q.MaxRepositories = *c.MaxRepositories
	}
	return q
}

// ValidateQuota returns invalid unless q has a scope and at least one bound.
func ValidateQuota(q Quota) error {
	switch {
	case q.Scope.IsZero():
		return Errorf(CodeInvalid, "a quota needs a scope").WithHint("berth quota set team/* --max-size 50GiB")
	case q.MaxSize < 0 || q.MaxRepositories < 0:
		return Errorf(CodeInvalid, "a quota's bounds are 0 (none) or more")
	case q.MaxSize == 0 && q.MaxRepositories == 0:
		return Errorf(CodeInvalid, "the quota on %s bounds nothing", q.Scope).WithHint("give --max-size (such as 50GiB) or --max-repositories")
	}
	return nil
}

// QuotaExceeded is the refusal of a push that needs adding bytes (and
// newRepo, a repository) to what q's scope holds (usage) beyond its bounds.
func QuotaExceeded(q Quota, usage QuotaUsage, repo string, adding int64, newRepo bool) *Error {
	scope := ShellQuote(q.Scope.String())
	if newRepo && q.MaxRepositories > 0 && usage.Repositories+1 > q.MaxRepositories {
		return Errorf(CodeQuotaExceeded, "the push would create repository %s, but quota %s allows %d repositories and it holds %d",
			repo, q.Scope, q.MaxRepositories, usage.Repositories).
			WithHint("push to one of the scope's repositories, delete one (berth repo delete NAME), or an owner raises the bound: berth quota set %s --max-repositories %d", scope, usage.Repositories+1).
			WithDetail("scope", q.Scope.String()).WithDetail("limit_repositories", q.MaxRepositories).WithDetail("repositories", usage.Repositories)
	}
	return Errorf(CodeQuotaExceeded, "the push to %s needs %s more, but quota %s allows %s and %s are in use (%s free)",
		repo, FormatBytes(adding), q.Scope, FormatBytes(q.MaxSize), FormatBytes(usage.Bytes), FormatBytes(max(0, q.MaxSize-usage.Bytes))).
		WithHint("see what retention would free: berth retention run %s --dry-run; or an owner raises the quota: berth quota set %s --max-size %s", scope, scope, sizeArg(usage.Bytes+adding)).
		WithDetail("scope", q.Scope.String()).WithDetail("limit", q.MaxSize).WithDetail("usage", usage.Bytes).WithDetail("needed", adding)
}

// Exceeds reports whether adding bytes (and newRepo, a repository) to usage
// goes beyond q. Exactly at a bound is within it.
func (q Quota) Exceeds(usage QuotaUsage, adding int64, newRepo bool) bool {
	if q.MaxSize > 0 && adding > 0 && usage.Bytes+adding > q.MaxSize {
		return true
	}
	return newRepo && q.MaxRepositories > 0 && usage.Repositories+1 > q.MaxRepositories
}

// ParseByteSize reads a size such as "50GiB", "512MiB", "10GB", "1024"
// (bytes). Units ending in iB are binary, KB/MB/GB/TB decimal, and the single
// letters K, M, G and T binary, as docker's --memory reads them.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, Errorf(CodeInvalid, "%q is not a size", Truncate(s, 40)).WithHint("give a size such as 50GiB, 512MiB or 10GB")
	}
	return n * mult, nil
}

// sizeArg is n rounded up to whole MiB, or GiB from 1 GiB, as a --max-size
// takes it.
func sizeArg(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%dGiB", (n+1<<30-1)>>30)
	}
	return fmt.Sprintf("%dMiB", max(1, (n+1<<20-1)>>20))
}

// FormatBytes writes n in the largest binary unit that keeps it at least 1,
// with one decimal: "1.5 GiB", "512 B".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// LifecycleStore keeps lifecycle rules and the facts they need.
type LifecycleStore interface {
	// PutImmutableRule stores r; conflict when the same scope and pattern exist.
	PutImmutableRule(ctx context.Context, r ImmutableRule) error
	// FindImmutableRules returns every rule, by scope then pattern.
	FindImmutableRules(ctx context.Context) ([]ImmutableRule, error)
	// DeleteImmutableRule removes one rule, or returns not_found.
	DeleteImmutableRule(ctx context.Context, scope Scope, tags string) error

	// PutRetentionRule stores r, replacing the rule on the same scope.
	PutRetentionRule(ctx context.Context, r RetentionRule) error
	// FindRetentionRules returns every rule, by scope.
	FindRetentionRules(ctx context.Context) ([]RetentionRule, error)
	// DeleteRetentionRule removes the rule on scope, or returns not_found.
	DeleteRetentionRule(ctx context.Context, scope Scope) error

	// PutQuota stores q, replacing the quota on the same scope.
	PutQuota(ctx context.Context, q Quota) error
	// FindQuotas returns every quota, by scope.
	FindQuotas(ctx context.Context) ([]Quota, error)
	// DeleteQuota removes the quota on scope, or returns not_found.
	DeleteQuota(ctx context.Context, scope Scope) error
	// QuotaUsage returns what the repositories scope covers hold: the bytes
	// of their distinct linked blobs and how many there are.
	QuotaUsage(ctx context.Context, scope Scope) (QuotaUsage, error)
	// ScopeHoldsBlob reports whether a repository scope covers links d.
	ScopeHoldsBlob(ctx context.Context, scope Scope, d Digest) (bool, error)

	// RecordTagPush records p as the latest push of its tag.
	RecordTagPush(ctx context.Context, p TagPush) error
	// FindTagPush returns the latest recorded push of repo:tag, or not_found.
	FindTagPush(ctx context.Context, repo, tag string) (TagPush, error)
	// RecordPulls records that each manifest was pulled at the given time,
	// keeping the latest time per manifest, in one transaction.
	RecordPulls(ctx context.Context, pulls []ManifestPull) error
	// FindRetentionImages returns every manifest of repo with what PlanRetention
	// reads; a tag without a recorded push has its manifest's Created time.
	FindRetentionImages(ctx context.Context, repo string) ([]RetentionImage, error)
	// DeleteImageIfUnchanged deletes the manifest d of repo and its tags, in
	// one transaction, only if its tags are still exactly tags and no
	// manifest of repo references it; it reports whether it did.
	DeleteImageIfUnchanged(ctx context.Context, repo string, d Digest, tags []string) (bool, error)
}

// ManifestPull is one manifest pulled at a time.
type ManifestPull struct {
	Repository string
	Digest     Digest
	Time       time.Time
}
