package berth

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CacheEvictionStore is what cache eviction reads and deletes through; a
// MetadataStore is one.
type CacheEvictionStore interface {
	FindRepositories(ctx context.Context, last string, n int) ([]string, error)
	FindRetentionImages(ctx context.Context, repo string) ([]RetentionImage, error)
	QuotaUsage(ctx context.Context, scope Scope) (QuotaUsage, error)
	DeleteImageIfUnchanged(ctx context.Context, repo string, d Digest, tags []string) (bool, error)
}

// AuditCacheEvict is one manifest evicted from a cache namespace past its
// bound (Target REPO@DIGEST; Detail "upstream", "tags", "size").
const AuditCacheEvict AuditAction = "cache.evict"

// Record tells audit and events, when set, that e was evicted from u's
// cache namespace, as retention tells of what it deletes.
func (e CacheEviction) Record(ctx context.Context, u Upstream, audit AuditRecorder, events EventPublisher) {
	if audit != nil {
		ev := NewAuditEvent(ctx, AuditCacheEvict, e.Repository+"@"+e.Digest.String(), nil)
		ev.Actor = "cache eviction"
		ev.Detail = map[string]string{"upstream": u.Name, "tags": strings.Join(e.Tags, ","), "size": fmt.Sprint(e.Size)}
		audit.Record(ev)
	}
	if events != nil {
		events.Publish(ctx, ImageEvent(EventImageDeleted, ImageEventData{Repository: e.Repository, Digest: e.Digest, Actor: "cache eviction"}))
	}
}

// CacheEviction is one manifest evicted from a cache namespace.
type CacheEviction struct {
	Repository string   `json:"repository"`
	Digest     Digest   `json:"digest"`
	Tags       []string `json:"tags"`
	// Size is the manifest's bytes and its blobs', as RetentionImage counts
	// them: blobs shared with images that stay are not freed.
	Size int64 `json:"size"`
	// LastUsed is when the image was last pulled, or fetched when no pull
	// was recorded.
	LastUsed time.Time `json:"last_used_at"`
}

// PlanCacheEviction returns which images of images (by repository) to
// evict to free excess bytes: whole images (an index with the manifests it
// lists), least recently used first (last pull, else when it was fetched),
// until their sizes reach excess. Each index comes before the manifests it
// lists, the order in which they can be deleted.
func PlanCacheEviction(images map[string][]RetentionImage, excess int64) []CacheEviction {
	if excess <= 0 {
		return nil
	}
	type group struct {
		repo  string
		items []RetentionImage
		size  int64
		used  time.Time
	}
	var groups []group
	for repo, ims := range images {
		byDigest := map[Digest]RetentionImage{}
		listed := map[Digest]bool{}
		for _, im := range ims {
			byDigest[im.Digest] = im
			for _, c := range im.Children {
				listed[c] = true
			}
		}
		taken := map[Digest]bool{}
		for _, im := range ims {
			if listed[im.Digest] {
				continue // goes with its index
			}
			g := group{repo: repo}
			var add func(d Digest)
			add = func(d Digest) {
				im, ok := byDigest[d]
				if !ok || taken[d] {
					return
				}
				taken[d] = true
				g.items = append(g.items, im)
				g.size += im.Size
				used := im.LastPulled
				if used.IsZero() {
					used = im.Created
				}
				if used.After(g.used) {
					g.used = used
				}
				for _, c := range im.Children {
					add(c)
				}
			}
			add(im.Digest)
			if len(g.items) > 0 {
				groups = append(groups, g)
			}
		}
	}
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(a.used.Compare(b.used), cmp.Compare(a.repo, b.repo), cmp.Compare(a.items[0].Digest, b.items[0].Digest))
	})
	var out []CacheEviction
	freed := int64(0)
	for _, g := range groups {
		if freed >= excess {
			break
		}
		for _, im := range g.items {
			tags := make([]string, 0, len(im.Tags))
			for _, t := range im.Tags {
				tags = append(tags, t.Tag)
			}
			out = append(out, CacheEviction{Repository: g.repo, Digest: im.Digest, Tags: tags, Size: im.Size, LastUsed: g.used})
		}
		freed += g.size
	}
	return out
}

// EvictCache evicts the least recently used images of u's cache namespace
// while what it holds (QuotaUsage of NAMESPACE/*) is more than u.MaxSize,
// and returns what it evicted (what it would, with dryRun). An image that
// changed meanwhile (a tag pushed or moved) is left. The blobs evicted
// images held are freed by the garbage collection that follows. Nothing
// happens without a MaxSize.
func EvictCache(ctx context.Context, st CacheEvictionStore, u Upstream, dryRun bool) ([]CacheEviction, error) {
	if u.MaxSize <= 0 {
		return nil, nil
	}
	scope, err := ParseScope(u.Namespace + "/*")
	if err != nil {
		return nil, err
	}
	usage, err := st.QuotaUsage(ctx, scope)
	if err != nil {
		return nil, fmt.Errorf("evict cache %s: %w", u.Namespace, err)
	}
	if usage.Bytes <= u.MaxSize {
		return nil, nil
	}
	images := map[string][]RetentionImage{}
	// The namespace's repositories are the ones listed after NAMESPACE/,
	// up to the first it does not hold.
	for last := u.Namespace + "/"; ; {
		repos, err := st.FindRepositories(ctx, last, 1000)
		if err != nil {
			return nil, fmt.Errorf("evict cache %s: %w", u.Namespace, err)
		}
		done := len(repos) < 1000
		for _, repo := range repos {
			if !u.Holds(repo) {
				done = true
				break
			}
			ims, err := st.FindRetentionImages(ctx, repo)
			if err != nil {
				return nil, fmt.Errorf("evict cache %s: %w", u.Namespace, err)
			}
			images[repo] = ims
			last = repo
		}
		if done {
			break
		}
	}
	plan := PlanCacheEviction(images, usage.Bytes-u.MaxSize)
	if dryRun {
		return plan, nil
	}
	var out []CacheEviction
	for _, e := range plan {
		ok, err := st.DeleteImageIfUnchanged(ctx, e.Repository, e.Digest, e.Tags)
		if err != nil {
			return out, fmt.Errorf("evict %s@%s: %w", e.Repository, e.Digest, err)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}
