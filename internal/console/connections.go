package console

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

func (h *Handler) routeConnections(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /connections", h.page(h.connections))
	mux.Handle("GET /connections/{name}", h.page(h.connection))
	mux.Handle("POST /connections/{name}/save", h.page(h.saveConnection))
	mux.Handle("POST /connections/{name}/authorize", h.page(h.authorize(true)))
	mux.Handle("POST /connections/{name}/unauthorize", h.page(h.authorize(false)))
	mux.Handle("POST /connections/{name}/dismiss", h.page(h.dismiss))
}

type connectionRow struct {
	api.Connection
	// Health lists what stops or will stop the connection's pipelines from
	// logging in, from what the API says of it; empty when nothing does.
	// The checks that ask each pipeline's issuer are Verify's, on the
	// connection's page.
	Health []health
}

type health struct {
	Text string
	// Bad is set when logins fail now, unset when they will or may.
	Bad bool
	// Fix is the command that fixes it.
	Fix string
}

// healthOf says what stops (Bad) or will stop c's pipelines from logging
// in, from the API's view of c and its pending requests: what needs no
// call to a pipeline's issuer.
func (h *Handler) healthOf(c api.Connection, pending int) []health {
	var out []health
	if c.Disabled {
		out = append(out, health{Text: "disabled", Bad: true, Fix: "berth connection enable " + c.Name})
	}
	if sec := c.Secret; sec != nil {
		switch days := berth.RoundDays(sec.Expires.Sub(h.now())); {
		case sec.State != berth.SecretActive:
			out = append(out, health{Text: "secret " + string(sec.State), Bad: true, Fix: "berth connection save " + c.Name})
		case days <= attentionDays:
			out = append(out, health{Text: fmt.Sprintf("secret expires in %d days", days), Fix: "berth connection save " + c.Name})
		}
	}
	if c.Auth == berth.ConnectionFederated && !c.AllPipelines && len(c.Pipelines) == 0 {
		out = append(out, health{Text: "no pipeline permitted", Bad: true, Fix: "berth connection authorize " + c.Name + " --pipeline PIPELINE"})
	}
	if pending > 0 {
		out = append(out, health{Text: fmt.Sprintf("%d pending requests", pending)})
	}
	return out
}

// connections lists every connection with its scheme, principal, the state
// of its secret and its health.
func (h *Handler) connections(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ctx := r.Context()
	cs, err := s.api.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	rows := make([]connectionRow, 0, len(cs))
	for _, c := range cs {
		reqs, err := s.api.PermissionRequests(ctx, c.Name)
		if err != nil {
			return nil, err
		}
		row := connectionRow{Connection: c, Health: h.healthOf(c, len(reqs.Requests))}
		rows = append(rows, row)
	}
	return &view{Title: "Connections", Data: rows}, nil
}

type connectionData struct {
	api.ConnectionDetail
	Requests  []api.PermissionRequest
	History   []api.HistoryEvent
	Pipelines []string // registered pipelines not yet permitted
	// Report is the Verify checklist, when asked for.
	Report *berth.ConnectionReport
	// New is the secret Save just made: shown once, in this answer only.
	New       *api.NewSecret
	Host, URL string
}

func (h *Handler) connectionView(r *http.Request, s *session, name string) (*view, *connectionData, error) {
	ctx := r.Context()
	c, err := s.api.GetConnection(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	reqs, err := s.api.PermissionRequests(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	hist, err := s.api.ConnectionHistory(ctx, name, "", 50)
	if err != nil {
		return nil, nil, err
	}
	pls, err := s.api.ListPipelines(ctx)
	if err != nil {
		return nil, nil, err
	}
	permitted := map[string]bool{}
	for _, p := range c.Pipelines {
		permitted[p] = true
	}
	base := h.baseURL(r)
	d := &connectionData{ConnectionDetail: c, Requests: reqs.Requests, History: hist.Events, URL: base,
		Host: hostOf(base)}
	for _, p := range pls {
		if !permitted[p.Name] {
			d.Pipelines = append(d.Pipelines, p.Name)
		}
	}
	// Newest first on the page.
	for i, j := 0, len(d.History)-1; i < j; i, j = i+1, j-1 {
		d.History[i], d.History[j] = d.History[j], d.History[i]
	}
	return &view{Title: "Connection " + c.Name, Page: "connection", Data: d}, d, nil
}

// connection shows one connection; with ?verify=1 (the Verify button, a GET
// form: checking changes nothing) its checklist, as berth connection verify.
func (h *Handler) connection(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	v, d, err := h.connectionView(r, s, name)
	if err != nil {
		return nil, err
	}
	if r.URL.Query().Get("verify") != "" {
		rep, err := s.api.VerifyConnection(r.Context(), name)
		if err != nil {
			return nil, err
		}
		d.Report = &rep
	}
	return v, nil
}

// saveConnection re-saves the connection (berth connection save): a secret
// connection gets a new secret, shown once in this answer.
func (h *Handler) saveConnection(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	ch, err := s.api.SaveConnection(r.Context(), name, api.RenewRequest{})
	if err != nil {
		return nil, err
	}
	v, d, err := h.connectionView(r, s, name)
	if err != nil {
		return nil, err
	}
	d.New, v.NoStore = ch.NewSecret, true
	return v, nil
}

func (h *Handler) authorize(permit bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
		name := r.PathValue("name")
		// all=1 permits (or withdraws) every registered pipeline, as
		// --all-pipelines does.
		all := r.PostFormValue("all") == "1"
		var err error
		if permit {
			_, err = s.api.AuthorizeConnection(r.Context(), name, r.PostFormValue("pipeline"), all)
		} else {
			_, err = s.api.UnauthorizeConnection(r.Context(), name, r.PostFormValue("pipeline"), all)
		}
		if err != nil {
			return nil, err
		}
		return h.back(w, r, "/connections/"+url.PathEscape(name))
	}
}
