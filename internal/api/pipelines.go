package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"

	"github.com/berth-dev/berth"
)

// CreatePipelineRequest is the body of POST /api/v1/pipelines: either issuer
// and subject, or a preset (github, gitlab, azure-devops, kubernetes) and its
// spec, as berth.PipelineSpec describes.
type CreatePipelineRequest struct {
	Name     string            `json:"name"`
	Issuer   string            `json:"issuer,omitempty"`
	Subject  string            `json:"subject,omitempty"`
	Audience string            `json:"audience,omitempty"`
	Claims   map[string]string `json:"claims,omitempty"`
	JWKS     json.RawMessage   `json:"jwks,omitempty"`
	Preset   string            `json:"preset,omitempty"`
	Spec     string            `json:"spec,omitempty"`
}

// PipelineList is the answer of GET /api/v1/pipelines, ordered by name.
type PipelineList struct {
	Pipelines []berth.Pipeline `json:"pipelines"`
}

// PipelineDetail is the answer of GET /api/v1/pipelines/{name}: the pipeline
// and the service connections that permit it by name (AllPipelines
// connections included).
type PipelineDetail struct {
	berth.Pipeline
	Connections []string `json:"connections"`
}

func (h *handler) routePipelines() {
	h.handle("POST /api/v1/pipelines", h.createPipeline)
	h.handle("GET /api/v1/pipelines", h.listPipelines)
	h.handle("GET /api/v1/pipelines/{name}", h.showPipeline)
	h.handle("POST /api/v1/pipelines/{name}/keys", h.setPipelineKeys)
	h.handle("DELETE /api/v1/pipelines/{name}", h.deletePipeline)
}

// PipelineKeysRequest is the body of POST /api/v1/pipelines/{name}/keys:
// the key set the pipeline pins from now on, or none (null) for the
// issuer's published keys.
type PipelineKeysRequest struct {
	JWKS json.RawMessage `json:"jwks"`
}

// setPipelineKeys replaces the key set a pipeline pins (an issuer's key
// rotation, for a cluster berth cannot reach), keeping the pipeline's id and
// so its permissions.
//
// POST /api/v1/pipelines/{name}/keys {"jwks"} → the pipeline. Needs owner
// on registry; invalid for a key set berth.Pipeline.Validate refuses.
func (h *handler) setPipelineKeys(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "changing a pipeline's keys"); err != nil {
		return err
	}
	p, err := h.pipelineByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	var req PipelineKeysRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	switch string(req.JWKS) {
	case "":
		return berth.Errorf(berth.CodeInvalid, "the body names no key set: give jwks, a JWKS document, or null for the issuer's published keys").
			WithHint("berth pipeline update %s --jwks-file F (or --published-keys)", p.Name)
	case "null":
		req.JWKS = nil
	}
	p.JWKS = req.JWKS
	if err := p.Validate(); err != nil {
		return err
	}
	if err := h.cfg.Store.UpdatePipelineKeys(ctx, p.ID, p.JWKS); berth.IsCode(err, berth.CodeNotFound) {
		_, err = h.pipelineByName(ctx, p.Name) // deleted meanwhile: its refusal
		return err
	} else if err != nil {
		return err
	}
	h.changed(r, c, "pipeline keys set", slog.String("pipeline", p.Name), slog.Bool("pinned", p.JWKS != nil))
	return writeJSON(w, http.StatusOK, p)
}

// noteTarget sets the target of the change's audit event, when the path does
// not name it.
func noteTarget(r *http.Request, target string) {
	if note, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		note.target = target
	}
}

// pipelineByName returns the pipeline named name: invalid for a name no
// pipeline may have, not_found with a hint when none has it.
func (h *handler) pipelineByName(ctx context.Context, name string) (berth.Pipeline, error) {
	if err := berth.ValidatePipelineName(name); err != nil {
		return berth.Pipeline{}, err
	}
	p, err := h.cfg.Store.FindPipelineByName(ctx, name)
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Pipeline{}, berth.Errorf(berth.CodeNotFound, "no pipeline is named %s", name).
			WithHint("berth pipeline list shows the pipelines; berth pipeline create %s --issuer URL --subject PATTERN registers one", name).
			WithDetail("pipeline", name)
	}
	return p, err
}

// createPipeline registers a CI workload identity.
//
// POST /api/v1/pipelines {"name", "issuer", "subject", "audience", "claims",
// "jwks", "preset", "spec"} → 201 with the pipeline. Needs owner on registry;
// invalid for what berth.NewPipeline refuses, conflict when the name is taken.
func (h *handler) createPipeline(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "creating a pipeline"); err != nil {
		return err
	}
	var req CreatePipelineRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	noteTarget(r, req.Name)
	p, err := berth.NewPipeline(h.rand, berth.PipelineSpec{Name: req.Name, Issuer: req.Issuer, Subject: req.Subject,
		Audience: req.Audience, Claims: req.Claims, JWKS: req.JWKS, Preset: req.Preset, Spec: req.Spec}, h.now())
	if err != nil {
		return err
	}
	if err := h.cfg.Store.CreatePipeline(ctx, p); err != nil {
		if berth.IsCode(err, berth.CodeConflict) {
			return berth.Errorf(berth.CodeConflict, "a pipeline named %s exists", p.Name).
				WithHint("berth pipeline show %s; for new keys of its issuer, berth pipeline update %s --jwks-file F (its permissions stay); else berth pipeline delete %s first to register it anew", p.Name, p.Name, p.Name)
		}
		return err
	}
	h.changed(r, c, "pipeline created", slog.String("pipeline", p.Name), slog.String("issuer", p.Issuer), slog.String("subject", p.Subject))
	return writeJSON(w, http.StatusCreated, p)
}

// listPipelines lists the registered pipelines by name.
//
// GET /api/v1/pipelines. Needs owner on registry.
func (h *handler) listPipelines(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing pipelines"); err != nil {
		return err
	}
	ps, err := h.cfg.Store.FindPipelines(ctx, berth.PipelineFilter{})
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []berth.Pipeline{}
	}
	return writeJSON(w, http.StatusOK, PipelineList{Pipelines: ps})
}

// showPipeline shows one pipeline and the connections that permit it.
//
// GET /api/v1/pipelines/{name}. Needs owner on registry.
func (h *handler) showPipeline(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "showing a pipeline"); err != nil {
		return err
	}
	p, err := h.pipelineByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	cs, err := h.cfg.Store.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return err
	}
	out := PipelineDetail{Pipeline: p, Connections: []string{}}
	for _, conn := range cs {
		if conn.Permits(p.ID) {
			out.Connections = append(out.Connections, conn.Name)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// deletePipeline removes a pipeline, its permissions on every connection and
// its pending permission requests. Tokens already issued to it run out on
// their own; the next exchange is refused as pipeline_unknown.
//
// DELETE /api/v1/pipelines/{name} → 200 with the pipeline as it was and the
// connections that permitted it by name. Needs owner on registry.
func (h *handler) deletePipeline(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "deleting a pipeline"); err != nil {
		return err
	}
	p, err := h.pipelineByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	cs, err := h.cfg.Store.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return err
	}
	out := PipelineDetail{Pipeline: p, Connections: []string{}}
	for _, conn := range cs {
		if slices.Contains(conn.Pipelines, p.ID) {
			out.Connections = append(out.Connections, conn.Name)
		}
	}
	if err := h.cfg.Store.DeletePipeline(ctx, p.ID); err != nil {
		if berth.IsCode(err, berth.CodeNotFound) {
			return berth.Errorf(berth.CodeNotFound, "no pipeline is named %s", p.Name).WithHint("berth pipeline list shows the pipelines")
		}
		return err
	}
	h.changed(r, c, "pipeline deleted", slog.String("pipeline", p.Name), slog.Int("permissions_removed", len(out.Connections)))
	return writeJSON(w, http.StatusOK, out)
}
