package berth

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Lifecycle audit actions.
const (
	// AuditRetentionDelete is one manifest a retention rule deleted (Target
	// REPO@DIGEST; Detail "rule", "reason", "tags", "size").
	AuditRetentionDelete AuditAction = "retention.delete"
	// AuditLifecycleChange is a lifecycle rule set or removed through the
	// management API (Target: "retention SCOPE", "immutable SCOPE PATTERN"
	// or "quota SCOPE"; Detail "change": "set" or "delete").
	AuditLifecycleChange AuditAction = "lifecycle.change"
	// AuditRetentionRun is retention run through the management API
	// (Detail "dry_run", "deleted").
	AuditRetentionRun AuditAction = "retention.run"
)

// Retention applies the retention rules: for each repository, the most
// specific rule covering it (RetentionRuleFor) decides through PlanRetention
// which manifests go. The dry run and the real run make the same plan; the
// real run deletes each manifest only if, at that moment, its tags are still
// those planned and no manifest of its repository references it, so an image
// pushed or re-tagged during the run is never deleted.
type Retention struct {
	Rules LifecycleStore
	Meta  ManifestStore
	// Audit and Events, when set, hear of each deletion (retention.delete,
	// image.deleted).
	Audit  AuditRecorder
	Events EventPublisher
}

// Run plans (and unless dryRun, carries out) retention on the repositories
// scope covers (every repository for the zero Scope) as of now. It returns
// what was (or would be) deleted, in repository order, oldest first.
func (rt *Retention) Run(ctx context.Context, scope Scope, now time.Time, dryRun bool) ([]RetentionDeletion, error) {
	rules, err := rt.Rules.FindRetentionRules(ctx)
	if err != nil || len(rules) == 0 {
		return nil, err
	}
	immutable, err := rt.Rules.FindImmutableRules(ctx)
	if err != nil {
		return nil, err
	}
	repos, err := rt.Meta.FindRepositories(ctx, "", -1)
	if err != nil {
		return nil, err
	}
	var out []RetentionDeletion
	for _, repo := range repos {
		if !scope.IsZero() && !scope.Covers(repo) {
			continue
		}
		rule, ok := RetentionRuleFor(rules, repo)
		if !ok {
			continue
		}
		images, err := rt.Rules.FindRetentionImages(ctx, repo)
		if err != nil {
			return out, fmt.Errorf("retention of %s: %w", repo, err)
		}
		for _, d := range PlanRetention(rule, repo, images, immutable, now) {
			if dryRun {
				out = append(out, d)
				continue
			}
			deleted, err := rt.Rules.DeleteImageIfUnchanged(ctx, repo, d.Digest, d.Tags)
			if err != nil {
				return out, fmt.Errorf("retention of %s@%s: %w", repo, d.Digest, err)
			}
			if !deleted {
				continue // pushed, tagged or referenced since the plan: kept
			}
			out = append(out, d)
			rt.record(ctx, d)
		}
	}
	return out, nil
}

func (rt *Retention) record(ctx context.Context, d RetentionDeletion) {
	if rt.Audit != nil {
		e := NewAuditEvent(ctx, AuditRetentionDelete, d.Repository+"@"+d.Digest.String(), nil)
		e.Actor = "retention"
		e.Detail = map[string]string{"rule": d.Rule, "reason": d.Reason, "tags": strings.Join(d.Tags, ","), "size": fmt.Sprint(d.Size)}
		rt.Audit.Record(e)
	}
	if rt.Events != nil {
		rt.Events.Publish(ctx, ImageEvent(EventImageDeleted, ImageEventData{Repository: d.Repository, Digest: d.Digest, Actor: "retention"}))
	}
}
