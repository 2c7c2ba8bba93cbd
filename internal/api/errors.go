package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/berth-dev/berth"
)

// ErrorBody is the API's error envelope: {"error":{"code","message","hint"}}.
type ErrorBody struct {
	Error ErrorEntry `json:"error"`
}

// ErrorEntry is one error: a berth.Error as the API shows it.
type ErrorEntry struct {
	Code    berth.Code `json:"code"`
	Message string     `json:"message"`
	Hint    string     `json:"hint,omitempty"`
	// Detail is the error's structured facts (missing_role, retry_after…).
	Detail map[string]any `json:"detail,omitempty"`
	// RequestID names the request in the server log.
	RequestID string `json:"request_id,omitempty"`
	// Explain links to the page that explains Code, when the registry's
	// public URL is set (berth.ExplainURL); never guessed without it.
	Explain string `json:"explain,omitempty"`
}

// writeError renders err, the one place the API writes an error. A
// *berth.Error keeps its code, facts and hint, with the status of the code
// table, and links to its code's explanation when the public URL is set;
// anything else is logged with the request id and shown only as an internal
// error.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	reqID := berth.RequestID(ctx)
	e := berth.AsError(err)
	if e == nil {
		h.cfg.Logger.ErrorContext(ctx, "internal error", slog.String("method", r.Method), slog.String("path", berth.RedactCredential(r.URL.Path)),
			slog.Any("err", err))
		if reqID != "" {
			e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", reqID)
		} else {
			e = berth.Errorf(berth.CodeInternal, "internal error")
		}
	}
	status := berth.LookupCode(e.Code).Status
	if status == http.StatusUnauthorized {
		// Both schemes work here: a token from /oauth2/token, or the client
		// id and secret themselves.
		w.Header().Add("WWW-Authenticate", h.cfg.Provider.Challenge(r, "", e))
		w.Header().Add("WWW-Authenticate", `Basic realm="berth", charset="UTF-8"`)
	}
	if retry, ok := e.Detail["retry_after"]; ok {
		w.Header().Set("Retry-After", fmt.Sprint(retry))
	}
	body := ErrorBody{Error: h.errorEntry(e, reqID)}
	b, merr := json.Marshal(body)
	if merr != nil { // a detail value JSON cannot hold: drop the detail
		body.Error.Detail = nil
		b, _ = json.Marshal(body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errorEntry is e as the API shows it, in an error answer or as the last
// line of a streamed one.
func (h *handler) errorEntry(e *berth.Error, reqID string) ErrorEntry {
	return ErrorEntry{Code: e.Code, Message: e.Message, Hint: e.Hint, Detail: e.Detail, RequestID: reqID,
		Explain: berth.ExplainURL(h.cfg.URL, e.Code)}
}
