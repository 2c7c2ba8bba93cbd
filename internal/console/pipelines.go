package console

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

func (h *Handler) routePipelines(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /pipelines", h.page(h.pipelines))
	mux.Handle("POST /pipelines", h.page(h.createPipeline))
	mux.Handle("GET /pipelines/{name}", h.page(h.pipeline))
}

// presets are the CI systems the create form offers, with what their spec
// is (as berth pipeline create's flags take it).
var presets = []struct{ Name, Label, Spec string }{
	{berth.PresetGitHub, "GitHub Actions", "OWNER/REPO[@BRANCH | :environment:ENV]"},
	{berth.PresetGitLab, "GitLab CI", "GROUP/PROJECT[@BRANCH]"},
	{berth.PresetAzureDevOps, "Azure Pipelines", "ORG/PROJECT/SERVICE-CONNECTION"},
	{berth.PresetKubernetes, "Kubernetes service account", "NAMESPACE/SERVICE-ACCOUNT"},
}

type pipelinesData struct {
	Pipelines []berth.Pipeline
	Presets   any
}

// pipelines lists the registered pipelines, with the create form.
func (h *Handler) pipelines(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ps, err := s.api.ListPipelines(r.Context())
	if err != nil {
		return nil, err
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return &view{Title: "Pipelines", Data: pipelinesData{Pipelines: ps, Presets: presets}}, nil
}

// createPipeline registers a pipeline from a preset and its spec, or from an
// issuer and a subject pattern, as berth pipeline create does.
func (h *Handler) createPipeline(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	// The issuer goes with a preset too: Azure Pipelines and Kubernetes
	// need one, and a self-managed GitLab or GitHub Enterprise names its own.
	req := api.CreatePipelineRequest{Name: r.PostFormValue("name"), Audience: r.PostFormValue("audience"), Issuer: r.PostFormValue("issuer")}
	if p := r.PostFormValue("preset"); p != "" {
		req.Preset, req.Spec = p, r.PostFormValue("spec")
	} else {
		req.Subject = r.PostFormValue("subject")
	}
	p, err := s.api.CreatePipeline(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return h.back(w, r, "/pipelines/"+url.PathEscape(p.Name))
}

type pipelineData struct {
	api.PipelineDetail
	Host, Audience string
	// Connection is the connection the snippet logs in with: the first
	// that permits the pipeline, or CONNECTION.
	Connection string
}

// pipeline shows one pipeline and the CI system's YAML that logs its jobs
// in.
func (h *Handler) pipeline(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	p, err := s.api.GetPipeline(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	d := pipelineData{PipelineDetail: p, Host: hostOf(h.baseURL(r)), Audience: p.Audience, Connection: "CONNECTION"}
	if len(p.Connections) > 0 {
		d.Connection = p.Connections[0]
	}
	if d.Audience == "" {
		d.Audience = h.Service
	}
	if d.Audience == "" {
		d.Audience = d.Host
	}
	return &view{Title: "Pipeline " + p.Name, Page: "pipeline", Data: d}, nil
}
