package console

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/berth-dev/berth/internal/api"
)

func (h *Handler) routeRepositories(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /repositories", h.page(h.repositories))
	mux.Handle("GET /repositories/{name...}", h.page(h.repository))
	mux.Handle("POST /tags/delete", h.page(h.deleteTag))
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
	Host string
	// CanDelete shows the Delete buttons: the person's own access check
	// allows delete here.
	CanDelete bool
}

// repository shows a repository's tags and manifests with their referrers
// and pull commands (pull access needed: the API decides).
func (h *Handler) repository(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	d, err := s.api.GetRepository(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	sort.Slice(d.Manifests, func(i, j int) bool { return d.Manifests[i].Created.After(d.Manifests[j].Created) })
	check, err := s.api.CheckAccess(r.Context(), "", "delete", d.Name)
	if err != nil {
		return nil, err
	}
	return &view{Title: "Repository " + d.Name, Page: "repository", Data: repositoryData{RepositoryDetail: d, Host: hostOf(h.baseURL(r)), CanDelete: check.Allowed}}, nil
}

// deleteTag deletes one tag (the delete role decides, in the API).
func (h *Handler) deleteTag(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	repo := r.PostFormValue("repository")
	if _, err := s.api.DeleteTag(r.Context(), repo+":"+r.PostFormValue("tag")); err != nil {
		return nil, err
	}
	return h.back(w, r, "/repositories/"+(&url.URL{Path: repo}).EscapedPath())
}
