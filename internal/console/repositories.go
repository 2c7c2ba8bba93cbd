package console

import (
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// Registry is the /v2/ handler, through which the console deletes content
// as the person would with their own client (*oci.Handler is one).
type Registry interface {
	// ServeAs answers a /v2/ request for caller, authenticated already,
	// with the registry's own authorization, audit, lifecycle rules and
	// webhook events, and returns its refusal.
	ServeAs(w http.ResponseWriter, r *http.Request, caller *berth.Caller) error
}

func (h *Handler) routeRepositories(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /repositories", h.page(h.repositories))
	mux.Handle("GET /repositories/{name...}", h.page(h.repository))
	mux.Handle("POST /tags/delete", h.page(h.deleteTag))
	mux.Handle("POST /manifests/delete", h.page(h.deleteManifest))
}

// repositories lists the repositories the person may list (the API filters
// them by the person's roles), optionally under one namespace.
func (h *Handler) repositories(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ns := r.URL.Query().Get("namespace")
	names, err := s.api.ListRepositories(r.Context(), ns)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return &view{Title: "Repositories", Data: map[string]any{"Namespace": ns, "Names": names}}, nil
}

type repositoryData struct {
	api.RepositoryDetail
	// Rows are the tags with what their manifest is: size, push time and,
	// for an index, its platforms.
	Rows []tagRow
	// Manifests are the repository's manifests, newest first.
	Manifests []manifestRow
	Host      string
	// CanDelete shows the Delete buttons: the person's own access check
	// allows delete here.
	CanDelete bool
}

// platformRow is one platform of an index. NotHeld marks a platform
// manifest the repository does not hold (a pull-through cache stores an
// index before its clients have pulled every platform).
type platformRow struct {
	berth.IndexManifest
	NotHeld bool
}

type tagRow struct {
	api.Tag
	// Size is the manifest's size with its blobs; for an index, with its
	// held platform manifests' too: what pulling every platform stores,
	// when NotHeld is 0.
	Size      int64
	Created   time.Time
	Label     string // what the platforms are of
	Platforms []platformRow
	// NotHeld counts the index's platforms the repository does not hold.
	NotHeld int
}

type manifestRow struct {
	api.ManifestSummary
	Label     string
	Platforms []platformRow
}

// repository shows a repository's tags and manifests with their platforms,
// referrers and pull commands (pull access needed: the API decides).
func (h *Handler) repository(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	d, err := s.api.GetRepository(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	sort.Slice(d.Manifests, func(i, j int) bool { return d.Manifests[i].Created.After(d.Manifests[j].Created) })
	byDigest := make(map[string]api.ManifestSummary, len(d.Manifests))
	for _, m := range d.Manifests {
		byDigest[m.Digest] = m
	}
	platforms := func(of []berth.IndexManifest) []platformRow {
		rows := make([]platformRow, len(of))
		for i, p := range of {
			_, held := byDigest[p.Digest.String()]
			rows[i] = platformRow{IndexManifest: p, NotHeld: !held}
		}
		return rows
	}
	manifests := make([]manifestRow, len(d.Manifests))
	for i, m := range d.Manifests {
		manifests[i] = manifestRow{ManifestSummary: m, Label: m.Digest, Platforms: platforms(m.Platforms)}
	}
	rows := make([]tagRow, 0, len(d.Tags))
	for _, t := range d.Tags {
		m := byDigest[t.Digest]
		row := tagRow{Tag: t, Size: m.Size, Created: m.Created, Label: t.Name, Platforms: platforms(m.Platforms)}
		for _, p := range row.Platforms {
			if p.NotHeld {
				row.NotHeld++
			} else {
				row.Size += byDigest[p.Digest.String()].Size
			}
		}
		rows = append(rows, row)
	}
	check, err := s.api.CheckAccess(r.Context(), "", "delete", d.Name)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Repository " + d.Name, Page: "repository", Data: repositoryData{RepositoryDetail: d, Rows: rows, Host: hostOf(h.baseURL(r)), CanDelete: check.Allowed, Manifests: manifests}}, nil
}

// deleteTag deletes one tag, leaving its manifest.
func (h *Handler) deleteTag(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	repo, tag := r.PostFormValue("repository"), r.PostFormValue("tag")
	if err := berth.ValidateTag(tag); err != nil {
		return nil, err
	}
	if err := h.deleteContent(r, s, repo, tag); err != nil {
		return nil, err
	}
	return h.back(w, r, "/repositories/"+(&url.URL{Path: repo}).EscapedPath())
}

// deleteManifest deletes one manifest by digest, with every tag on it.
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	repo := r.PostFormValue("repository")
	d, err := berth.ParseDigest(r.PostFormValue("digest"))
	if err != nil {
		return nil, err
	}
	if err := h.deleteContent(r, s, repo, d.String()); err != nil {
		return nil, err
	}
	return h.back(w, r, "/repositories/"+(&url.URL{Path: repo}).EscapedPath())
}

// deleteContent deletes ref, a tag or a digest, of repo as
// DELETE /v2/REPO/manifests/REF from the person's own client does: the
// registry's handler decides (delete role), checks the lifecycle rules
// (an immutable tag is kept), audits and tells the webhooks, and its
// refusal is the page. repo and ref are checked first, so the path names
// exactly them.
func (h *Handler) deleteContent(r *http.Request, s *session, repo, ref string) error {
	if err := berth.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if h.Registry == nil {
		return berth.Errorf(berth.CodeUnsupported, "this console has no registry to delete content through").
			WithHint("delete with a registry client: crane delete HOST/%s@DIGEST, or berth tag delete %s:TAG", repo, repo)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodDelete, "/v2/"+repo+"/manifests/"+ref, http.NoBody)
	if err != nil {
		return err
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	return h.Registry.ServeAs(newRecorder(), req, s.caller)
}
