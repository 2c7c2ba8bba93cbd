package berth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Code is a stable reason code. Codes may be added, never renamed: clients, audit
// queries and documentation depend on them.
type Code string

// Registry content codes. Each maps to one OCI distribution-spec error code.
const (
	CodeBlobUnknown         Code = "blob_unknown"
	CodeBlobUploadInvalid   Code = "blob_upload_invalid"
	CodeBlobUploadUnknown   Code = "blob_upload_unknown"
	CodeDigestInvalid       Code = "digest_invalid"
	CodeManifestBlobUnknown Code = "manifest_blob_unknown"
	CodeManifestInvalid     Code = "manifest_invalid"
	CodeManifestUnknown     Code = "manifest_unknown"
	CodeNameInvalid         Code = "name_invalid"
	CodeNameUnknown         Code = "name_unknown"
	CodeSizeInvalid         Code = "size_invalid"
	CodeTagInvalid          Code = "tag_invalid"
	CodeRangeInvalid        Code = "range_invalid"
	CodeUnsupported         Code = "unsupported"
	CodeTooLarge            Code = "too_large"
	// CodeTagImmutable is a push or delete that would move or remove a tag
	// an immutable-tag rule keeps.
	CodeTagImmutable Code = "tag_immutable"
	// CodeQuotaExceeded is a push beyond a quota on its repository's scope.
	CodeQuotaExceeded Code = "quota_exceeded"
)

// Generic codes.
const (
	CodeInvalid  Code = "invalid"
	CodeNotFound Code = "not_found"
	CodeConflict Code = "conflict"
	CodeInternal Code = "internal"
)

// Authentication and authorization codes (see DESIGN.md); reserved here so that the
// table is the one place every code is named.
const (
	CodeCredentialsMissing    Code = "credentials_missing"
	CodeClientUnknown         Code = "client_unknown"
	CodeSecretInvalid         Code = "secret_invalid"
	CodeSecretIDSent          Code = "secret_id_sent"
	CodeSecretExpired         Code = "secret_expired"
	CodeSecretRevoked         Code = "secret_revoked"
	CodePrincipalDisabled     Code = "principal_disabled"
	CodeTokenExpired          Code = "token_expired"
	CodeTokenInvalid          Code = "token_invalid"
	CodeRefreshTokenInvalid   Code = "refresh_token_invalid"
	CodeAssertionInvalid      Code = "assertion_invalid"
	CodeAssertionExpired      Code = "assertion_expired"
	CodePipelineUnknown       Code = "pipeline_unknown"
	CodeAudienceMismatch      Code = "audience_mismatch"
	CodeTooManyAttempts       Code = "too_many_attempts"
	CodeRoleMissing           Code = "role_missing"
	CodeScopeNotGranted       Code = "scope_not_granted"
	CodePipelineNotAuthorized Code = "pipeline_not_authorized"
	CodeConnectionUnknown     Code = "connection_unknown"
	CodeConnectionDisabled    Code = "connection_disabled"
	CodeAssertionReplayed     Code = "assertion_replayed"
)

// Sign-in codes: a person signing in through an identity provider, in the
// browser or with the device authorization grant (RFC 8628).
const (
	// CodeIdPUnknown is a sign-in or command naming a provider nobody added.
	CodeIdPUnknown Code = "idp_unknown"
	// CodeIdPUnreachable is a provider whose discovery document, keys or
	// token endpoint gave no usable answer.
	CodeIdPUnreachable Code = "idp_unreachable"
	// CodeSignInRefused is the provider refusing the sign-in, or answering
	// with an ID token berth cannot accept.
	CodeSignInRefused Code = "signin_refused"
	// CodeSignInStateInvalid is a sign-in callback or form whose state or
	// CSRF field does not match the browser's: forged, replayed or stale.
	CodeSignInStateInvalid Code = "signin_state_invalid"
	// CodeCrossSiteRefused is a change (management API or registry) that a
	// browser says another site sent.
	CodeCrossSiteRefused Code = "cross_site_refused"
	// CodeDeviceCodePending is a device login polled before the person
	// decided: RFC 8628's authorization_pending, or slow_down.
	CodeDeviceCodePending Code = "device_code_pending"
	// CodeDeviceCodeExpired is a device login whose code ran out before the
	// person approved it.
	CodeDeviceCodeExpired Code = "device_code_expired"
	// CodeDeviceCodeDenied is a device login the person denied.
	CodeDeviceCodeDenied Code = "device_code_denied"
	// CodeSessionEnded is a person's session that ended: signed out, expired,
	// its principal disabled, or refused by the provider on refresh.
	CodeSessionEnded Code = "session_ended"
)

// Client-side codes: the machine berth runs on is at fault, not a request.
const (
	// CodeCredentialHelperNotFound is docker-credential-berth not on PATH, so
	// that no client could run the helper berth login would register.
	CodeCredentialHelperNotFound Code = "credential_helper_not_found"
	// CodeServerUnreachable is a server that gave no HTTP answer at all:
	// connection refused, no such host, a timeout, a failed TLS handshake.
	CodeServerUnreachable Code = "server_unreachable"
)

// Audit log codes.
const (
	// CodeAuditTampered is a hash chain that does not verify: an audit event
	// was edited or deleted, or the log was truncated, outside berth.
	CodeAuditTampered Code = "audit_tampered"
)

// Error is the one error type that reaches users. Message states the facts; Hint,
// when set, names the command or change that fixes the cause.
type Error struct {
	Code    Code
	Message string
	Hint    string
	// Detail is optional structured data that a transport may show (an OCI
	// error's detail field). It never holds a credential.
	Detail map[string]any
	// Private holds facts for the audit log only, which owners read and the
	// caller may not: the closest pipelines to an ID token that matched
	// none, the principal a wrong secret was tried on. Transports never
	// render it; NewAuditEvent records it in the event's detail.
	Private map[string]string
}

// Errorf returns an *Error with the given code and a formatted message.
// Messages quote what callers sent (a repository name, a tag, a scope), which
// may be a secret pasted into the wrong field: every credential in the
// message is redacted (RedactCredentials), as in its hint and detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: RedactCredentials(fmt.Sprintf(format, args...))}
}

// WithHint returns e with its hint set, for chaining at construction.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = RedactCredentials(fmt.Sprintf(format, args...))
	return e
}

// WithDetail returns e with key set in its detail.
func (e *Error) WithDetail(key string, value any) *Error {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	if s, ok := value.(string); ok {
		value = RedactCredentials(s)
	}
	e.Detail[key] = value
	return e
}

// WithPrivate returns e with key set in its private detail (see Private).
func (e *Error) WithPrivate(key, value string) *Error {
	if e.Private == nil {
		e.Private = map[string]string{}
	}
	e.Private[key] = RedactCredentials(value)
	return e
}

func (e *Error) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("%s: %s (Try: %s)", e.Code, e.Message, e.Hint)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// ErrorCode returns the code of the first *Error in err's chain, or CodeInternal
// when err holds none. A nil error has no code.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns the first *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool { return err != nil && ErrorCode(err) == code }

// Details returns what a transport shows of e besides its message: its
// detail, plus "reason" (the code), "hint" and "request_id" when set, and
// "explain", the page that explains the code (ExplainURL), when the
// registry's public URL base is set.
func (e *Error) Details(requestID, base string) map[string]any {
	d := make(map[string]any, len(e.Detail)+4)
	for k, v := range e.Detail {
		d[k] = v
	}
	d["reason"] = string(e.Code)
	if e.Hint != "" {
		d["hint"] = e.Hint
	}
	if requestID != "" {
		d["request_id"] = requestID
	}
	if u := ExplainURL(base, e.Code); u != "" {
		d[DetailExplain] = u
	}
	return d
}

// DetailExplain is the detail key (and the API error's field) that holds
// the link to the page explaining an error's code.
const DetailExplain = "explain"

// ExplainURL is the page explaining code on the registry whose public URL
// is base (url: in the configuration): BASE/errors/CODE, which the console
// serves, the same text as berth explain CODE. It is "" when base or code is
// empty, and every transport then shows no link at all: a link guessed from
// the request's Host header would name whatever host the client sent, which
// an attacker (or a proxy's internal name) chooses, and would send a person
// who follows a refusal's link to somebody else's page. Only the URL the
// operator configured is trusted to be the registry's.
func ExplainURL(base string, code Code) string {
	base = strings.TrimRight(base, "/")
	if base == "" || code == "" {
		return ""
	}
	return base + "/errors/" + url.PathEscape(string(code))
}
