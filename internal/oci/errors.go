package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-dev/berth"
)

// errorBody is the distribution-spec error envelope.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// writeError renders err in the OCI envelope. A *berth.Error keeps its code,
// facts and hint (in detail.reason and detail.hint) and, when the public URL
// is set, the link to its explanation (detail.explain); anything else is logged
// with the request id and shown only as an internal error.
//
// A 401 carries the Guard's challenge for the scope the request needed. A
// token that lacks a scope its principal holds (scope_not_granted) is answered
// 401 with error="insufficient_scope", so clients fetch a token that has it.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, rt route, err error) {
	e := berth.AsError(err)
	reqID := berth.RequestID(r.Context())
	if e == nil && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left while the request waited: no one to answer
	}
	if e == nil {
		h.Logger.ErrorContext(r.Context(), "internal error", slog.String("method", r.Method), slog.String("path", berth.RedactCredential(r.URL.Path)), slog.Any("err", err))
		e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", reqID)
	}
	info := berth.LookupCode(e.Code)
	status := info.Status
	switch e.Code {
	case berth.CodeScopeNotGranted:
		status = http.StatusUnauthorized
	case berth.CodeRefreshTokenInvalid:
		// A refresh token sent as the password of berth.NullClientID: on
		// /v2/ a refused credential is a 401 with the challenge, not the
		// token endpoint's 400 invalid_grant.
		status = http.StatusUnauthorized
	}
	detail := e.Details(reqID, h.URL)
	if status == http.StatusUnauthorized && h.Guard != nil {
		w.Header().Set("WWW-Authenticate", h.Guard.Challenge(r, scopeOf(r, rt), e))
	}
	if retry, ok := e.Detail["retry_after"]; ok {
		w.Header().Set("Retry-After", fmt.Sprint(retry))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.Header().Del("Docker-Content-Digest")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(errorBody{Errors: []errorEntry{{Code: info.OCI, Message: ociMessage(e, info), Detail: detail}}})
}

// ociMessage is the message of e in the envelope. Where the OCI code does
// not name berth's reason (DENIED stands for many), the message starts with
// it: clients such as skopeo and docker print the message alone, and the
// reason is what berth explain and the docs are indexed by.
func ociMessage(e *berth.Error, info berth.CodeInfo) string {
	if strings.EqualFold(info.OCI, string(e.Code)) {
		return e.Message
	}
	return string(e.Code) + ": " + e.Message
}
