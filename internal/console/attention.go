package console

import (
	"net/http"
	"net/url"
	"slices"
	"sort"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/signin"
)

// attentionWindow is how soon a secret must expire to need attention
// (attentionDays days).
const (
	attentionWindow = "30d"
	attentionDays   = 30
)

type pendingRequest struct {
	Connection string
	api.PermissionRequest
}

type refusalGroup struct {
	Reason berth.Code
	Actor  string
	Count  int
	Last   string
}

type expiredSecret struct {
	Connection, Principal, Hint, Expires string
}

type attentionData struct {
	Expiring []api.ExpiringSecret
	Expired  []expiredSecret
	Pending  []pendingRequest
	Refusals []refusalGroup
	// Refused is the API's refusal of a non-owner: the page shows it
	// instead of the lists.
	Refused *refusal
	// Verified is set when the page was asked to verify every connection
	// (?verify=1: the checks reach the pipelines' issuers, so not on every
	// visit); Failing lists the connections whose checklist fails.
	Verified bool
	Failing  []failingConnection
	// ScheduledAt, when Verified is not set, is when the server's own
	// scheduled verification last ran, and Failing is what it found.
	ScheduledAt string
	// Broken lists the connections that fail now by what the API says of
	// them (disabled, secret expired, no pipeline permitted), with no
	// call to an issuer: shown before Verify is asked for.
	Broken []brokenConnection
	// Webhooks lists the endpoints with failed deliveries among their latest.
	Webhooks []failingWebhook
}

type brokenConnection struct {
	Connection string
	Health     health
}

type failingConnection struct {
	Connection string
	Check      berth.Check
}

type failingWebhook struct {
	ID, URL string
	Failed  int
	Last    berth.Delivery
}

// attention is the home page: what needs someone now. Each list comes from
// the API (owner only), so a person without the owner role sees why not.
func (h *Handler) attention(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ctx := r.Context()
	var d attentionData
	exp, err := s.api.ListExpiringSecrets(ctx, attentionWindow, "")
	if berth.IsCode(err, berth.CodeRoleMissing) || berth.IsCode(err, berth.CodeScopeNotGranted) {
		d.Refused = refusalOf(err)
		return &view{Title: "Attention", Data: d}, nil
	} else if err != nil {
		return nil, err
	}
	d.Expiring = exp.Secrets
	conns, err := s.api.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range conns {
		if c.Secret != nil && c.Secret.State == berth.SecretExpired {
			d.Expired = append(d.Expired, expiredSecret{Connection: c.Name, Principal: c.Principal, Hint: c.Secret.Hint, Expires: date(c.Secret.Expires)})
		}
		reqs, err := s.api.PermissionRequests(ctx, c.Name)
		if err != nil {
			return nil, err
		}
		for _, pr := range reqs.Requests {
			d.Pending = append(d.Pending, pendingRequest{Connection: c.Name, PermissionRequest: pr})
		}
		for _, hl := range h.healthOf(c, 0) {
			if hl.Bad {
				d.Broken = append(d.Broken, brokenConnection{Connection: c.Name, Health: hl})
			}
		}
	}
	if r.URL.Query().Get("verify") == "" && h.LastVerification != nil {
		failing, at := h.LastVerification()
		if !at.IsZero() {
			d.ScheduledAt = date(at)
			for _, c := range conns {
				if ch, ok := failing[c.Name]; ok && !c.Disabled {
					d.Failing = append(d.Failing, failingConnection{Connection: c.Name, Check: ch})
				}
			}
			// A connection the scheduled check names is listed once.
			d.Broken = slices.DeleteFunc(d.Broken, func(b brokenConnection) bool {
				_, ok := failing[b.Connection]
				return ok
			})
		}
	}
	if r.URL.Query().Get("verify") != "" {
		d.Verified = true
		for _, c := range conns {
			rep, err := s.api.VerifyConnection(ctx, c.Name)
			if err != nil {
				return nil, err
			}
			for _, ch := range rep.Checks {
				if ch.Status == berth.CheckFail {
					d.Failing = append(d.Failing, failingConnection{Connection: c.Name, Check: ch})
					break
				}
			}
		}
	}
	hooks, err := s.api.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	for _, wh := range hooks {
		ds, err := s.api.ListDeliveries(ctx, wh.ID, 20)
		if err != nil {
			return nil, err
		}
		f := failingWebhook{ID: wh.ID, URL: wh.URL}
		for _, dl := range ds {
			if dl.Status == berth.DeliveryFailed {
				if f.Failed == 0 || dl.Created.After(f.Last.Created) {
					f.Last = dl
				}
				f.Failed++
			}
		}
		if f.Failed > 0 {
			d.Webhooks = append(d.Webhooks, f)
		}
	}
	page, err := s.api.Audit(ctx, url.Values{"since": {"24h"}, "result": {string(berth.AuditDenied)}, "limit": {"1000"}, "last": {"true"}})
	if err != nil {
		return nil, err
	}
	groups := map[[2]string]*refusalGroup{}
	for _, e := range page.Events {
		k := [2]string{string(e.Reason), e.Actor}
		g := groups[k]
		if g == nil {
			g = &refusalGroup{Reason: e.Reason, Actor: e.Actor}
			groups[k] = g
		}
		g.Count++
		if t := date(e.Time); t > g.Last {
			g.Last = t
		}
	}
	for _, g := range groups {
		d.Refusals = append(d.Refusals, *g)
	}
	sort.Slice(d.Refusals, func(i, j int) bool {
		a, b := d.Refusals[i], d.Refusals[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		return a.Actor < b.Actor
	})
	return &view{Title: "Attention", Data: d}, nil
}

// dismiss removes a pipeline's pending request without permitting it.
func (h *Handler) dismiss(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	if _, err := s.api.DismissRequest(r.Context(), name, r.PostFormValue("pipeline")); err != nil {
		return nil, err
	}
	next := signin.LocalNext(r.PostFormValue("next"))
	if next == "" {
		next = "/connections/" + url.PathEscape(name)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil, nil
}

// permit grants a pipeline's pending permission request on a connection.
func (h *Handler) permit(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	name := r.PathValue("name")
	if _, err := s.api.PermitPipeline(r.Context(), name, r.PostFormValue("pipeline")); err != nil {
		return nil, err
	}
	next := signin.LocalNext(r.PostFormValue("next"))
	if next == "" {
		next = "/connections/" + url.PathEscape(name)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil, nil
}
