package berth

import "net/http"

// CodeInfo describes one reason code: how transports render it and what it means.
type CodeInfo struct {
	Code Code
	// Status is the HTTP status a transport answers with.
	Status int
	// OCI is the distribution-spec error code used in the /v2/ envelope.
	OCI string
	// Summary says in one sentence what the code means.
	Summary string
}

// Codes is the table of every reason code. berth explain and docs/errors.md are
// made from it; transports look statuses up here and nowhere else.
var Codes = []CodeInfo{
	{CodeBlobUnknown, http.StatusNotFound, "BLOB_UNKNOWN", "The blob is not in this repository."},
	{CodeBlobUploadInvalid, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "The upload request was malformed or does not fit the upload's state."},
	{CodeBlobUploadUnknown, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "No upload session with this id exists in this repository; it finished, was cancelled or was collected."},
	{CodeDigestInvalid, http.StatusBadRequest, "DIGEST_INVALID", "A digest is malformed, uses an unsupported algorithm, or does not match the content sent."},
	{CodeManifestBlobUnknown, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "The manifest references a blob or manifest that is not in the repository; push it first."},
	{CodeManifestInvalid, http.StatusBadRequest, "MANIFEST_INVALID", "The manifest is malformed or its media type is not one the registry accepts."},
	{CodeManifestUnknown, http.StatusNotFound, "MANIFEST_UNKNOWN", "No manifest with this tag or digest exists in the repository."},
	{CodeNameInvalid, http.StatusBadRequest, "NAME_INVALID", "The repository name does not follow the distribution-spec grammar."},
	{CodeNameUnknown, http.StatusNotFound, "NAME_UNKNOWN", "The repository does not exist."},
	{CodeSizeInvalid, http.StatusBadRequest, "SIZE_INVALID", "A declared length does not match the content sent."},
	{CodeTagInvalid, http.StatusBadRequest, "MANIFEST_INVALID", "The tag does not follow the distribution-spec grammar."},
	{CodeRangeInvalid, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "A chunk does not start where the upload ends, or a requested range lies outside the blob."},
	{CodeUnsupported, http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is not supported."},
	{CodeTooLarge, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "The content exceeds the configured limit."},

	{CodeInvalid, http.StatusBadRequest, "UNSUPPORTED", "The request is invalid."},
	{CodeNotFound, http.StatusNotFound, "NAME_UNKNOWN", "The named object does not exist."},
	{CodeConflict, http.StatusConflict, "UNSUPPORTED", "The object already exists or changed concurrently."},
	{CodeInternal, http.StatusInternalServerError, "UNKNOWN", "An internal error; its details are in the server log under the request id."},

	{CodeCredentialsMissing, http.StatusUnauthorized, "UNAUTHORIZED", "The request carried no credentials."},
	{CodeClientUnknown, http.StatusUnauthorized, "UNAUTHORIZED", "No principal has this client id or name."},
	{CodeSecretInvalid, http.StatusUnauthorized, "UNAUTHORIZED", "The client secret does not match any secret of the principal."},
	{CodeSecretIDSent, http.StatusUnauthorized, "UNAUTHORIZED", "The secret's id was sent where its value belongs."},
	{CodeSecretExpired, http.StatusUnauthorized, "UNAUTHORIZED", "The client secret has expired."},
	{CodeSecretRevoked, http.StatusUnauthorized, "UNAUTHORIZED", "The client secret was removed."},
	{CodePrincipalDisabled, http.StatusUnauthorized, "UNAUTHORIZED", "The principal is disabled."},
	{CodeTokenExpired, http.StatusUnauthorized, "UNAUTHORIZED", "The access token has expired."},
	{CodeTokenInvalid, http.StatusUnauthorized, "UNAUTHORIZED", "The access token is malformed, not signed by this registry, or for another audience."},
	{CodeRefreshTokenInvalid, http.StatusBadRequest, "UNAUTHORIZED", "The refresh token is unknown, expired or revoked."},
	{CodeAssertionInvalid, http.StatusUnauthorized, "UNAUTHORIZED", "The client assertion (a CI OIDC token) could not be verified."},
	{CodeAssertionExpired, http.StatusUnauthorized, "UNAUTHORIZED", "The client assertion (a CI OIDC token) has expired."},
	{CodePipelineUnknown, http.StatusUnauthorized, "UNAUTHORIZED", "No registered pipeline matches the CI token's issuer and claims."},
	{CodeAudienceMismatch, http.StatusUnauthorized, "UNAUTHORIZED", "The token was issued for another audience."},
	{CodeTooManyAttempts, http.StatusTooManyRequests, "TOOMANYREQUESTS", "Too many failed attempts; wait before trying again."},
	{CodeRoleMissing, http.StatusForbidden, "DENIED", "The principal holds no role that allows this action on this repository."},
	{CodeScopeNotGranted, http.StatusForbidden, "DENIED", "The token was not issued for this action; request a token with this scope."},
	{CodePipelineNotAuthorized, http.StatusForbidden, "DENIED", "The pipeline is not permitted to use this service connection."},
	{CodeConnectionUnknown, http.StatusBadRequest, "UNAUTHORIZED", "No service connection has this name."},
	{CodeConnectionDisabled, http.StatusForbidden, "DENIED", "The service connection is disabled."},

	// The stored log, not the request, is at fault, and no other request would
	// succeed: a server-side failure, shown with its facts (it is an *Error).
	{CodeAuditTampered, http.StatusInternalServerError, "UNKNOWN", "The audit log's hash chain does not verify: an event was edited or deleted, or the log was truncated, outside berth."},
}

var codeIndex = func() map[Code]CodeInfo {
	m := make(map[Code]CodeInfo, len(Codes))
	for _, c := range Codes {
		m[c.Code] = c
	}
	return m
}()

// LookupCode returns the table entry for code; an unknown code is described as
// internal.
func LookupCode(code Code) CodeInfo {
	if info, ok := codeIndex[code]; ok {
		return info
	}
	return codeIndex[CodeInternal]
}
