package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Repositories and tags, for berth repo and berth tag: the same content as
// /v2/, decided by the same roles (catalog to list, pull to read, delete to
// delete), from the caller's current role assignments. A repository the
// caller may not read and one that does not exist are refused alike, as on
// /v2/.

func (h *handler) routeRepositories() {
	h.handle("GET /api/v1/repositories", h.listRepositories)
	h.handle("GET /api/v1/repositories/{name...}", h.showRepository)
	h.handle("DELETE /api/v1/repositories/{name...}", h.deleteRepository)
	h.handle("GET /api/v1/tags/{name...}", h.listTags)
	h.handle("DELETE /api/v1/tags/{ref...}", h.deleteTag)
}

// RepositoryList is the answer of GET /api/v1/repositories.
type RepositoryList struct {
	Repositories []string `json:"repositories"`
}

// listRepositories lists the repositories the caller may see in the catalog,
// under ?namespace=NS (NS/…) when given.
//
// GET /api/v1/repositories[?namespace=NS]
func (h *handler) listRepositories(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	idx, err := h.accessIndex(ctx, c)
	if err != nil {
		return err
	}
	ns := strings.Trim(r.URL.Query().Get("namespace"), "/")
	out := RepositoryList{Repositories: []string{}}
	last := ""
	for {
		page, err := h.cfg.Store.FindRepositories(ctx, last, 1000)
		if err != nil {
			return err
		}
		for _, repo := range page {
			if (ns == "" || strings.HasPrefix(repo, ns+"/")) && idx.Listable(repo) {
				out.Repositories = append(out.Repositories, repo)
			}
		}
		if len(page) < 1000 {
			return writeJSON(w, http.StatusOK, out)
		}
		last = page[len(page)-1]
	}
}

// decideRepository returns nil when the caller may do the Docker action on
// repo, as /v2/ decides it.
func (h *handler) decideRepository(ctx context.Context, c *berth.Caller, action, repo string) error {
	if err := berth.ValidateRepositoryName(repo); err != nil {
		return err
	}
	idx, err := h.accessIndex(ctx, c)
	if err != nil {
		return err
	}
	return idx.DecideDocker(action, repo).Err()
}

// Tag is a tag and the manifest it points at.
type Tag struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// ManifestSummary is one manifest of a repository: Size is its own bytes
// and those of the blobs it references (config and layers).
type ManifestSummary struct {
	Digest       string             `json:"digest"`
	MediaType    string             `json:"media_type"`
	ArtifactType string             `json:"artifact_type,omitempty"`
	Size         int64              `json:"size"`
	Created      time.Time          `json:"created_at"`
	Tags         []string           `json:"tags"`
	Subject      string             `json:"subject,omitempty"`
	Referrers    []berth.Descriptor `json:"referrers"`
	// Platforms are the manifests an image index names, with the platform
	// of each; empty for an image manifest.
	Platforms []berth.IndexManifest `json:"platforms,omitempty"`
}

// RepositoryDetail is the answer of GET /api/v1/repositories/{name}.
type RepositoryDetail struct {
	Name      string            `json:"name"`
	Tags      []Tag             `json:"tags"`
	Manifests []ManifestSummary `json:"manifests"`
}

// showRepository shows a repository's tags and manifests, with sizes,
// referrers and, for an index, its platforms. It needs pull on it.
//
// GET /api/v1/repositories/{name...}
func (h *handler) showRepository(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	repo := r.PathValue("name")
	if err := h.decideRepository(ctx, c, berth.DockerActionPull, repo); err != nil {
		return err
	}
	tags, err := h.repositoryTags(ctx, repo)
	if err != nil {
		return err
	}
	out := RepositoryDetail{Name: repo, Tags: tags, Manifests: []ManifestSummary{}}
	tagsOf := map[string][]string{}
	for _, t := range tags {
		tagsOf[t.Digest] = append(tagsOf[t.Digest], t.Name)
	}
	digests, err := h.cfg.Store.FindManifestDigests(ctx, repo)
	if err != nil {
		return err
	}
	for _, d := range digests {
		m, err := h.cfg.Store.FindManifest(ctx, repo, d.String())
		if berth.IsCode(err, berth.CodeManifestUnknown) {
			continue
		} else if err != nil {
			return err
		}
		s := ManifestSummary{Digest: d.String(), MediaType: m.MediaType, ArtifactType: m.ArtifactType, Size: m.Size(),
			Created: m.Created.UTC(), Tags: tagsOf[d.String()], Referrers: []berth.Descriptor{}, Platforms: m.IndexManifests()}
		if s.Tags == nil {
			s.Tags = []string{}
		}
		if m.Subject != "" {
			s.Subject = m.Subject.String()
		}
		for _, ref := range m.References {
			if ref.Kind != berth.ReferenceBlob {
				continue
			}
			if l, err := h.cfg.Store.FindBlobLink(ctx, repo, ref.Digest); err == nil {
				s.Size += l.Size
			}
		}
		if refs, err := h.cfg.Store.FindReferrers(ctx, repo, d, ""); err == nil {
			s.Referrers = append(s.Referrers, refs...)
		} else {
			return err
		}
		out.Manifests = append(out.Manifests, s)
	}
	return writeJSON(w, http.StatusOK, out)
}

// DeletedRepository is the answer of DELETE /api/v1/repositories/{name}.
type DeletedRepository struct {
	Name string `json:"name"`
	berth.RepositoryDeletion
}

// deleteRepository removes a repository with its tags, manifests and blob
// links; garbage collection removes the blob bytes no other repository
// holds. It needs delete on it.
//
// DELETE /api/v1/repositories/{name...}
func (h *handler) deleteRepository(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	repo := r.PathValue("name")
	noteTarget(r, repo)
	if err := h.decideRepository(ctx, c, berth.DockerActionDelete, repo); err != nil {
		return err
	}
	del, ok := h.cfg.Store.(berth.RepositoryDeleter)
	if !ok {
		return berth.Errorf(berth.CodeUnsupported, "this server's metadata store cannot delete a whole repository").
			WithHint("delete its tags and manifests instead: berth tag delete %s:TAG", repo)
	}
	// Every tag goes with the repository, so each must be free to go.
	tags, err := h.repositoryTags(ctx, repo)
	if err != nil && !berth.IsCode(err, berth.CodeNameUnknown) {
		return err
	}
	for _, t := range tags {
		if err := h.mayDeleteTag(ctx, repo, t.Name); err != nil {
			return err
		}
	}
	d, err := del.DeleteRepository(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		h.deleted(ctx, c, repo, t)
	}
	h.changed(r, c, "repository deleted", slog.String("repository", repo), slog.String("manifests", strconv.Itoa(d.Manifests)),
		slog.String("tags", strconv.Itoa(d.Tags)))
	return writeJSON(w, http.StatusOK, DeletedRepository{Name: repo, RepositoryDeletion: d})
}

// TagList is the answer of GET /api/v1/tags/{name}.
type TagList struct {
	Name string `json:"name"`
	Tags []Tag  `json:"tags"`
}

// listTags lists a repository's tags with their digests. It needs pull.
//
// GET /api/v1/tags/{name...}
func (h *handler) listTags(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	repo := r.PathValue("name")
	if err := h.decideRepository(ctx, c, berth.DockerActionPull, repo); err != nil {
		return err
	}
	tags, err := h.repositoryTags(ctx, repo)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, TagList{Name: repo, Tags: tags})
}

// repositoryTags returns repo's tags, in lexical order, with the digests
// they point at; name_unknown when repo does not exist.
func (h *handler) repositoryTags(ctx context.Context, repo string) ([]Tag, error) {
	names, err := h.cfg.Store.FindTags(ctx, repo, "", -1)
	if err != nil {
		return nil, err
	}
	tags := make([]Tag, 0, len(names))
	for _, t := range names {
		m, err := h.cfg.Store.FindManifest(ctx, repo, t)
		if berth.IsCode(err, berth.CodeManifestUnknown) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, err
		}
		tags = append(tags, Tag{Name: t, Digest: m.Digest.String()})
	}
	return tags, nil
}

// splitTagRef splits NAME:TAG at its last colon after the last slash.
func splitTagRef(ref string) (repo, tag string, err error) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i < strings.LastIndexByte(ref, '/') || i == len(ref)-1 {
		return "", "", berth.Errorf(berth.CodeInvalid, "%q is not REPOSITORY:TAG", berth.Truncate(ref, 200)).
			WithHint("berth tag delete team/app:v1")
	}
	return ref[:i], ref[i+1:], nil
}

// deleteTag removes one tag, leaving its manifest (untagged, until garbage
// collection or a new tag). It needs delete on the repository.
//
// DELETE /api/v1/tags/{ref...} where ref is NAME:TAG
func (h *handler) deleteTag(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	repo, tag, err := splitTagRef(r.PathValue("ref"))
	if err != nil {
		return err
	}
	noteTarget(r, repo)
	noteDetail(r, "tag", tag)
	if err := h.decideRepository(ctx, c, berth.DockerActionDelete, repo); err != nil {
		return err
	}
	m, err := h.cfg.Store.FindManifest(ctx, repo, tag)
	if err != nil {
		return err
	}
	if err := h.mayDeleteTag(ctx, repo, tag); err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteTag(ctx, repo, tag); err != nil {
		return err
	}
	t := Tag{Name: tag, Digest: m.Digest.String()}
	h.deleted(ctx, c, repo, t)
	h.changed(r, c, "tag deleted", slog.String("repository", repo), slog.String("tag", tag))
	return writeJSON(w, http.StatusOK, t)
}

// mayDeleteTag returns tag_immutable when a rule protects the tag, as the
// registry's DELETE does.
func (h *handler) mayDeleteTag(ctx context.Context, repo, tag string) error {
	if h.cfg.Tags == nil {
		return nil
	}
	_, err := h.cfg.Tags.CheckTag(ctx, repo, tag, "")
	return err
}

// deleted tells Events that the tag t of repo is gone.
func (h *handler) deleted(ctx context.Context, c *berth.Caller, repo string, t Tag) {
	if h.cfg.Events == nil {
		return
	}
	h.cfg.Events.Publish(ctx, berth.ImageEvent(berth.EventImageDeleted,
		berth.ImageEventData{Repository: repo, Tag: t.Name, Digest: berth.Digest(t.Digest), Actor: c.Actor.Name}))
}
