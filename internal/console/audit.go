package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

type auditData struct {
	// Since and Until bound the time: RFC 3339 times, or durations back
	// from now ("24h", "7d"), as berth audit --since and --until take them.
	Since, Until, Principal, Result, Code, Action, Repository string
	Events                                                    []berth.AuditEvent
	// Next is the URL of the following page, "" on the last.
	Next template.URL
	// Chain is the Verify chain answer, when asked for.
	Chain *api.AuditVerification
	// Tampered is the refusal of a chain that does not verify.
	Tampered *refusal
}

// audit lists the audit log with GET /api/v1/audit's filters (a GET form:
// reading changes nothing); with ?verify=1 it also checks the hash chain,
// as berth audit verify does. Owners only: the API decides.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	ctx := r.Context()
	q := r.URL.Query()
	d := auditData{Since: q.Get("since"), Until: q.Get("until"), Principal: q.Get("principal"), Result: q.Get("result"), Code: q.Get("code"),
		Action: q.Get("action"), Repository: q.Get("repository")}
	if d.Since == "" {
		d.Since = "24h"
	}
	f := url.Values{"since": {d.Since}, "limit": {"200"}}
	for k, v := range map[string]string{"until": d.Until, "principal": d.Principal, "result": d.Result, "code": d.Code, "action": d.Action,
		"repository": d.Repository, "after": q.Get("after")} {
		if v != "" {
			f.Set(k, v)
		}
	}
	page, err := s.api.Audit(ctx, f)
	if err != nil {
		return nil, err
	}
	d.Events = page.Events
	if page.Next > 0 {
		next := url.Values{}
		for k, v := range f {
			next[k] = v
		}
		next.Del("limit")
		next.Set("after", strconv.FormatInt(page.Next, 10))
		d.Next = template.URL("/audit?" + next.Encode()) // built from url.Values: safe
	}
	if q.Get("verify") != "" {
		v, err := s.api.VerifyAudit(ctx)
		if berth.IsCode(err, berth.CodeAuditTampered) {
			d.Tampered = refusalOf(err)
		} else if err != nil {
			return nil, err
		} else {
			d.Chain = &v
		}
	}
	return &view{Title: "Audit", Data: d}, nil
}
