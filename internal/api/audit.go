package api

import (
	"net/http"
	"strconv"

	"github.com/berth-dev/berth"
)

// AuditPage is the answer of GET /api/v1/audit: events in Seq order and, when
// more may follow, the cursor to pass as after for the next page.
type AuditPage struct {
	Events []berth.AuditEvent `json:"events"`
	Next   int64              `json:"next,omitempty"`
}

// listAudit pages through the audit log, filtered as berth audit filters it:
// since and until (a duration back from now or an RFC 3339 time), principal,
// repository (or NS/*), action, result, code, after and before (Seq
// cursors), limit, last. With last=true and before=SEQ it pages backwards:
// the last limit events before SEQ.
//
// GET /api/v1/audit. It needs owner on registry: the log names every
// principal and repository.
func (h *handler) listAudit(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "reading the audit log"); err != nil {
		return err
	}
	q := r.URL.Query()
	now := h.now()
	var f berth.AuditFilter
	var err error
	if f.Since, err = berth.ParseAuditTime("since", q.Get("since"), now); err != nil {
		return err
	}
	if f.Until, err = berth.ParseAuditTime("until", q.Get("until"), now); err != nil {
		return err
	}
	if f.Repository, err = berth.ParseAuditRepository("repository", q.Get("repository")); err != nil {
		return err
	}
	if f.Code, err = berth.ParseAuditCode("code", q.Get("code")); err != nil {
		return err
	}
	if v := q.Get("result"); v != "" {
		if f.Result, err = berth.ParseAuditResult(v); err != nil {
			return err
		}
	}
	f.Principal, f.Action = q.Get("principal"), berth.AuditAction(q.Get("action"))
	if v := q.Get("after"); v != "" {
		if f.After, err = strconv.ParseInt(v, 10, 64); err != nil || f.After < 0 {
			return berth.Errorf(berth.CodeInvalid, "after %q is not an event number", berth.Truncate(v, 20)).
				WithHint("pass the seq of the last event of the page you have, as berth audit --after SEQ does")
		}
	}
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 0 {
			return berth.Errorf(berth.CodeInvalid, "before %q is not an event number", berth.Truncate(v, 20)).
				WithHint("pass the seq of the first event of the page you have, or leave before out: berth audit --limit N reads the last N events")
		}
	}
	if f.Limit, err = parseLimit(q, defaultPageSize, maxPageSize); err != nil {
		return err
	}
	// last=true: the last limit events that match (berth audit without
	// --after), still in Seq order; there is no next page.
	f.Last = f.After == 0 && q.Get("last") == "true"
	events, err := h.cfg.Store.FindAuditEvents(ctx, f)
	if err != nil {
		return err
	}
	page := AuditPage{Events: events}
	if page.Events == nil {
		page.Events = []berth.AuditEvent{}
	}
	if len(events) == f.Limit && !f.Last {
		page.Next = events[len(events)-1].Seq
	}
	return writeJSON(w, http.StatusOK, page)
}
