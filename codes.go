package berth

import "net/http"

// CodeGroup is the part of berth a reason code belongs to; berth explain and
// docs/errors.md list codes by group.
type CodeGroup string

// Code groups, in the order docs/errors.md shows them.
const (
	GroupContent        CodeGroup = "registry content"
	GroupAuthentication CodeGroup = "authentication"
	GroupAuthorization  CodeGroup = "authorization"
	GroupCache          CodeGroup = "pull-through cache"
	GroupGeneric        CodeGroup = "audit and generic"
)

// CodeGroups lists every group in display order.
var CodeGroups = []CodeGroup{GroupContent, GroupAuthentication, GroupAuthorization, GroupCache, GroupGeneric}

// CodeInfo describes one reason code: how transports render it, what it means,
// why it usually happens and what fixes it.
type CodeInfo struct {
	Code Code
	// Status is the HTTP status a transport answers with.
	Status int
	// OCI is the distribution-spec error code used in the /v2/ envelope.
	OCI string
	// Summary says in one sentence what the code means.
	Summary string
	// Group is the part of berth the code belongs to.
	Group CodeGroup
	// Causes are the usual reasons the code is returned, most common first.
	Causes []string
	// Fixes are what makes the error go away, as commands where one exists
	// (in backquotes, which both Markdown and a terminal read as code).
	Fixes []string
}

// Codes is the table of every reason code. berth explain and docs/errors.md are
// made from it; transports look statuses up here and nowhere else.
var Codes = []CodeInfo{
	{
		Code: CodeBlobUnknown, Status: http.StatusNotFound, OCI: "BLOB_UNKNOWN", Group: GroupContent,
		Summary: "The blob is not in this repository.",
		Causes: []string{
			"The client asked for a layer or config by a digest this repository does not hold: blobs belong to a repository, so a layer pushed to `team/app` is not readable as `team/other` until it is pushed or mounted there.",
			"The blob was deleted through `DELETE /v2/NAME/blobs/DIGEST`, or `berth gc` collected it because no manifest referenced it any more.",
			"The digest in the request was copied wrongly or comes from another registry's image.",
		},
		Fixes: []string{
			"Push the image again (`docker push HOST/NAME:TAG`); the client uploads every blob the registry lacks.",
			"Compare the digest with the layers the manifest names: `crane manifest HOST/NAME:TAG`.",
		},
	},
	{
		Code: CodeBlobUploadInvalid, Status: http.StatusBadRequest, OCI: "BLOB_UPLOAD_INVALID", Group: GroupContent,
		Summary: "The upload request was malformed or does not fit the upload's state.",
		Causes: []string{
			"The upload id in the URL is not one berth issues (1 to 64 characters of `[A-Za-z0-9-]`): a client or proxy rewrote the `Location` URL the registry returned.",
			"The request does not fit the upload protocol of the distribution spec, such as a body sent where none is allowed.",
		},
		Fixes: []string{
			"Follow the `Location` header of each upload answer unchanged; check that a reverse proxy in front of berth does not rewrite it.",
			"Retry the push with a current client (docker, skopeo, crane or oras); it starts a new upload.",
		},
	},
	{
		Code: CodeBlobUploadUnknown, Status: http.StatusNotFound, OCI: "BLOB_UPLOAD_UNKNOWN", Group: GroupContent,
		Summary: "No upload session with this id exists in this repository; it finished, was cancelled or was collected.",
		Causes: []string{
			"The upload was already finished with `PUT …?digest=` or cancelled with `DELETE`, and the client sent another chunk to it.",
			"The upload sat idle long enough for `berth gc` to collect it (a paused or very slow job).",
			"The upload id was started in another repository: an upload belongs to the repository it was opened in.",
		},
		Fixes: []string{
			"Retry the push; the client opens a new upload session.",
			"For a slow network, push smaller chunks or run `berth gc` less often so uploads are not collected mid-push.",
		},
	},
	{
		Code: CodeDigestInvalid, Status: http.StatusBadRequest, OCI: "DIGEST_INVALID", Group: GroupContent,
		Summary: "A digest is malformed, uses an unsupported algorithm, or does not match the content sent.",
		Causes: []string{
			"The content that arrived hashes to another digest than the one declared: the upload was truncated or altered in transit, often by a proxy that limits body size.",
			"The digest is not `ALGORITHM:HEX`, or uses an algorithm other than `sha256` or `sha512`, or has the wrong number of hex characters.",
			"An upload was closed without `?digest=sha256:…` in the query.",
		},
		Fixes: []string{
			"Retry the push; if it fails again, check the body size limit of any proxy in front of berth.",
			"Write digests as `sha256:` followed by 64 lower-case hex characters.",
		},
	},
	{
		Code: CodeManifestBlobUnknown, Status: http.StatusBadRequest, OCI: "MANIFEST_BLOB_UNKNOWN", Group: GroupContent,
		Summary: "The manifest references a blob or manifest that is not in the repository; push it first.",
		Causes: []string{
			"The client pushed the manifest before all of its layers and config were uploaded, or an earlier layer upload failed.",
			"An index names a platform manifest that was pushed to another repository, or not pushed at all.",
			"The manifest was copied from another registry without its blobs.",
		},
		Fixes: []string{
			"Push the whole image, which uploads blobs before the manifest: `docker push HOST/NAME:TAG`, `crane copy SRC HOST/NAME:TAG` or `skopeo copy docker://SRC docker://HOST/NAME:TAG`.",
			"For an index, push each platform manifest to the same repository first (`crane copy --all-tags` or `skopeo copy --all`).",
		},
	},
	{
		Code: CodeManifestInvalid, Status: http.StatusBadRequest, OCI: "MANIFEST_INVALID", Group: GroupContent,
		Summary: "The manifest is malformed or its media type is not one the registry accepts.",
		Causes: []string{
			"The manifest is not valid JSON, has a `schemaVersion` other than 2 (Docker schema 1 is not supported), or lacks its config descriptor.",
			"The `Content-Type` of the request differs from the manifest's own `mediaType`.",
			"A descriptor declares a size that differs from the blob stored under its digest.",
		},
		Fixes: []string{
			"Convert old schema 1 images: `skopeo copy --format v2s2 docker://SRC docker://HOST/NAME:TAG`.",
			"Send the manifest's `mediaType` as the `Content-Type` header; the message names the field that is wrong.",
		},
	},
	{
		Code: CodeManifestUnknown, Status: http.StatusNotFound, OCI: "MANIFEST_UNKNOWN", Group: GroupContent,
		Summary: "No manifest with this tag or digest exists in the repository.",
		Causes: []string{
			"The tag was never pushed to this repository, or is misspelled (tags are case-sensitive).",
			"The tag or manifest was deleted, or the tag was moved to another manifest and the old digest then collected by `berth gc`.",
		},
		Fixes: []string{
			"List the tags the repository holds: `crane ls HOST/NAME` or `curl HOST/v2/NAME/tags/list` with a token.",
			"Push the tag: `docker push HOST/NAME:TAG`.",
		},
	},
	{
		Code: CodeNameInvalid, Status: http.StatusBadRequest, OCI: "NAME_INVALID", Group: GroupContent,
		Summary: "The repository name does not follow the distribution-spec grammar.",
		Causes: []string{
			"The name holds upper-case letters, spaces, or separators other than `.`, `_`, `__` and `-` inside a path component.",
			"The name is longer than the registry's limit, or a component starts or ends with a separator.",
		},
		Fixes: []string{
			"Use lower-case path components joined by `/`, such as `team/app`: `docker tag IMAGE HOST/team/app:TAG`.",
		},
	},
	{
		Code: CodeNameUnknown, Status: http.StatusNotFound, OCI: "NAME_UNKNOWN", Group: GroupContent,
		Summary: "The repository does not exist.",
		Causes: []string{
			"Nothing was ever pushed to this repository, or its name is misspelled.",
			"Every manifest of the repository was deleted.",
		},
		Fixes: []string{
			"List the repositories (needs the `catalog` role): `crane catalog HOST`.",
			"Push to create it: `docker push HOST/NAME:TAG`; a repository exists once it holds a manifest.",
		},
	},
	{
		Code: CodeSizeInvalid, Status: http.StatusBadRequest, OCI: "SIZE_INVALID", Group: GroupContent,
		Summary: "A declared length does not match the content sent.",
		Causes: []string{
			"`Content-Length` says more or fewer bytes than arrived: the connection dropped, or a proxy buffered or cut the body.",
			"A chunk's `Content-Range` spans another number of bytes than its `Content-Length`.",
		},
		Fixes: []string{
			"Retry the push; if it recurs, check proxies between the client and berth for body size limits and buffering.",
		},
	},
	{
		Code: CodeTagInvalid, Status: http.StatusBadRequest, OCI: "MANIFEST_INVALID", Group: GroupContent,
		Summary: "The tag does not follow the distribution-spec grammar.",
		Causes: []string{
			"The tag holds characters outside `[a-zA-Z0-9_.-]`, such as `/` or `+` from a branch name or semver build metadata.",
			"The tag starts with `.` or `-`, or is longer than 128 characters.",
		},
		Fixes: []string{
			"Sanitise the tag in the pipeline, e.g. `TAG=$(echo \"$BRANCH\" | tr -c 'a-zA-Z0-9_.-' '-' | cut -c1-128)`.",
		},
	},
	{
		Code: CodeRangeInvalid, Status: http.StatusRequestedRangeNotSatisfiable, OCI: "BLOB_UPLOAD_INVALID", Group: GroupContent,
		Summary: "A chunk does not start where the upload ends, or a requested range lies outside the blob.",
		Causes: []string{
			"Chunks of an upload were sent out of order or one was sent twice after a retry: each chunk must start at the byte the upload holds.",
			"`Content-Range` is not `START-END` with START ≤ END.",
		},
		Fixes: []string{
			"Retry the push; the client asks the upload's current offset (`GET` on the upload URL answers it in `Range`) or starts a new upload.",
		},
	},
	{
		Code: CodeUnsupported, Status: http.StatusMethodNotAllowed, OCI: "UNSUPPORTED", Group: GroupContent,
		Summary: "The operation is not supported.",
		Causes: []string{
			"The HTTP method is not one the endpoint answers, such as `PATCH` on a manifest or `PUT` on `/oauth2/token`.",
			"The OAuth 2.0 request names a `grant_type` berth does not answer (it answers `client_credentials`, `password` and `refresh_token`; federation sends a JWT client assertion).",
		},
		Fixes: []string{
			"Use a client that speaks OCI Distribution 1.1 and Docker token authentication; the message names the method or grant refused.",
		},
	},
	{
		Code: CodeTooLarge, Status: http.StatusRequestEntityTooLarge, OCI: "SIZE_INVALID", Group: GroupContent,
		Summary: "The content exceeds the configured limit.",
		Causes: []string{
			"A manifest is larger than `max_manifest_size` in the server configuration (4 MiB by default).",
			"A form body sent to `/oauth2/token` is larger than the token endpoint accepts.",
		},
		Fixes: []string{
			"Raise `max_manifest_size` in the file given to `berth serve --config FILE`, or split a very large index.",
		},
	},

	{
		Code: CodeTagImmutable, Status: http.StatusConflict, OCI: "DENIED", Group: GroupContent,
		Summary: "The tag is immutable: an immutable-tag rule keeps it where it points, so it cannot be moved or deleted.",
		Causes: []string{
			"A pipeline re-ran and pushed a release tag again (`v1.2.3`) with a rebuilt image, whose digest differs from the one the tag holds.",
			"Someone tried to delete a release tag, or the manifest it points at, in a scope with `berth immutable add SCOPE --tags PATTERN`.",
		},
		Fixes: []string{
			"Push the new build under a new tag (`v1.2.4`), or push by digest.",
			"If the tag must move, an owner removes the rule: `berth immutable remove SCOPE --tags PATTERN` (see `berth immutable list`).",
		},
	},
	{
		Code: CodeQuotaExceeded, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupContent,
		Summary: "The push would take the repositories of a scope beyond their quota of bytes or repositories.",
		Causes: []string{
			"The scope holds images no one needs any more: every commit pushed a tag and nothing deletes old ones.",
			"The quota is smaller than the images the scope's pipelines now build.",
		},
		Fixes: []string{
			"See what a retention rule would free: `berth retention run SCOPE --dry-run`, then set one: `berth retention set SCOPE --keep-last 20`.",
			"Delete unneeded images, then collect their blobs: `berth gc`.",
			"An owner raises the quota: `berth quota set SCOPE --max-size 100GiB` (`berth quota list` shows usage).",
		},
	},

	{
		Code: CodeInvalid, Status: http.StatusBadRequest, OCI: "UNSUPPORTED", Group: GroupGeneric,
		Summary: "The request is invalid.",
		Causes: []string{
			"A command-line argument, flag or API field has a wrong value: an unknown role, action or output format, a scope that is not `registry`, `team/*` or `team/app`, a malformed duration.",
			"A principal name does not match `[a-z0-9][a-z0-9._-]*`.",
		},
		Fixes: []string{
			"Read the message, which names the field, and the hint, which shows the accepted form; `berth COMMAND --help` lists the flags.",
		},
	},
	{
		Code: CodeNotFound, Status: http.StatusNotFound, OCI: "NAME_UNKNOWN", Group: GroupGeneric,
		Summary: "The named object does not exist.",
		Causes: []string{
			"The principal, secret, role assignment or refresh token named does not exist, or its name is misspelled.",
			"The object was deleted, possibly by another administrator (see `berth audit --since 7d`).",
		},
		Fixes: []string{
			"List what exists: `berth principal list`, `berth secret list PRINCIPAL`, `berth role list --principal P`.",
		},
	},
	{
		Code: CodeConflict, Status: http.StatusConflict, OCI: "UNSUPPORTED", Group: GroupGeneric,
		Summary: "The object already exists or changed concurrently.",
		Causes: []string{
			"A principal with this name already exists, or the principal already holds this role on this scope.",
			"Two requests changed the same object at once.",
			"A leaked credential to revoke (`berth scan --revoke`) is the one the request itself was made with.",
		},
		Fixes: []string{
			"Inspect what exists: `berth principal show NAME`, `berth role list --principal P`; treat an existing assignment as done.",
			"Retry a change that raced with another.",
			"Log in with another credential, then revoke the leaked one (`berth secret remove PRINCIPAL ID`, `berth token revoke ID`).",
		},
	},
	{
		Code: CodeInternal, Status: http.StatusInternalServerError, OCI: "UNKNOWN", Group: GroupGeneric,
		Summary: "An internal error; its details are in the server log under the request id.",
		Causes: []string{
			"The server failed for a reason that is not the request's: a full disk, an unreadable data folder, a database or object store that does not answer.",
		},
		Fixes: []string{
			"Find the request id (in the error's detail, or the `X-Request-Id` response header) in the output of `berth serve`, which logs the cause.",
			"Check free space and permissions of the data folder (`--data`, `BERTH_DATA`) and that `/healthz` answers 200.",
		},
	},

	{
		Code: CodeCredentialsMissing, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The request carried no credentials.",
		Causes: []string{
			"The client never logged in to this host, or logged in to another spelling of it (`localhost:5000` versus `127.0.0.1:5000`).",
			"The `Authorization` header is neither `Basic` nor `Bearer`, or its Basic part is not base64 of `CLIENT_ID:SECRET`.",
			"The berth CLI has no server or credentials: `BERTH_URL`, `BERTH_CLIENT_ID` and `BERTH_CLIENT_SECRET` are unset and nothing was stored by `berth login`.",
			"An anonymous request asked for more than pull, or for a repository no `pull` role makes public.",
		},
		Fixes: []string{
			"`berth login HOST`, or `docker login HOST -u CLIENT_ID --password-stdin` with the secret on standard input.",
			"For the CLI: `export BERTH_URL=http://127.0.0.1:5000 BERTH_CLIENT_ID=CLIENT_ID BERTH_CLIENT_SECRET=SECRET` (the first admin's are in `DATA/initial-admin.json`).",
			"`berth doctor HOST` shows which credential source a client will use.",
		},
	},
	{
		Code: CodeClientUnknown, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "No principal has this client id.",
		Causes: []string{
			"The client id is misspelled, or is the client id of a principal that was deleted.",
			"A principal name that does not exist is answered with `secret_invalid` instead, so that names cannot be probed; the audit log keeps the real cause.",
			"The client id and secret were swapped: a secret (`brt_…`) was sent as the user name.",
			"The credentials belong to another berth server.",
		},
		Fixes: []string{
			"Find the principal and its client id: `berth principal list`, `berth principal show NAME`.",
			"Log in with the client id (or principal name) as the user and the secret as the password: `docker login HOST -u CLIENT_ID --password-stdin`.",
		},
	},
	{
		Code: CodeSecretInvalid, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The client secret does not match any secret of the principal.",
		Causes: []string{
			"The secret was mistyped or truncated: its checksum or length does not match a berth secret.",
			"The secret belongs to another principal, or the client id was sent as the password.",
			"A CI variable holds an old value, or is empty and the pipeline sent its own name instead.",
			"The user name names no principal: berth answers an unknown name exactly as a wrong secret, so that names cannot be probed (`berth audit --code secret_invalid` shows the cause).",
		},
		Fixes: []string{
			"Compare the first characters of the secret with the hints of the principal's secrets: `berth secret list PRINCIPAL`.",
			"Make a new secret and update the pipeline variable: `berth secret add PRINCIPAL --expires-in 90d`.",
			"Use federation, which needs no secret: `berth connection create NAME --principal PRINCIPAL --auth federated`.",
		},
	},
	{
		Code: CodeSecretIDSent, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The secret's id was sent where its value belongs.",
		Causes: []string{
			"The `id` column of `berth secret list` (a UUID) was copied into the password instead of the value `berth secret add` printed once.",
		},
		Fixes: []string{
			"Send the value printed by `berth secret add`; berth stores only its hash, so a lost value cannot be shown again.",
			"If the value is lost, make a new secret: `berth secret add PRINCIPAL --expires-in 90d`.",
		},
	},
	{
		Code: CodeSecretExpired, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The client secret has expired.",
		Causes: []string{
			"The secret reached the expiry set when it was added (`--expires-in`) and nobody rotated it; the message names the secret's hint and the day it expired.",
			"A refresh token or access token came from a secret that has since expired; tokens stop working with their secret.",
		},
		Fixes: []string{
			"Add a new secret and put it where the old one was used: `berth secret add PRINCIPAL --expires-in 90d`, then remove the old one with `berth secret remove PRINCIPAL SECRET_ID`.",
			"Log in again with the new secret: `berth login HOST`, or `docker login HOST -u CLIENT_ID --password-stdin`.",
			"Stop depending on secrets in CI: `berth connection create NAME --principal PRINCIPAL --auth federated`.",
		},
	},
	{
		Code: CodeSecretRevoked, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The client secret was removed.",
		Causes: []string{
			"An administrator removed the secret with `berth secret remove`, for example after a rotation, and a client still sends it.",
			"A refresh token or access token came from the removed secret; tokens stop working with their secret.",
		},
		Fixes: []string{
			"Use another secret of the principal (`berth secret list PRINCIPAL`) or add one: `berth secret add PRINCIPAL --expires-in 90d`.",
			"Log in again with it: `berth login HOST`; find who removed it with `berth audit --principal PRINCIPAL --since 30d`.",
			"No owner of the registry can log in any more: `berth admin recover` on the server's machine gives admin a new secret.",
		},
	},
	{
		Code: CodePrincipalDisabled, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The principal is disabled.",
		Causes: []string{
			"An administrator ran `berth principal disable NAME`; every secret and token of a disabled principal stops working at once.",
		},
		Fixes: []string{
			"If the principal should work again: `berth principal enable NAME`.",
			"Otherwise use another principal's credentials; `berth audit --principal NAME` shows when it was disabled and by whom.",
		},
	},
	{
		Code: CodeTokenExpired, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The access token has expired.",
		Causes: []string{
			"A long job kept using one access token past its lifetime instead of asking for a new one.",
			"A tool was given a token once (`--expose-token`, a copied `Authorization` header) and cannot refresh it.",
			"The clocks of the client's host and the server disagree.",
		},
		Fixes: []string{
			"`berth login HOST` stores a refresh token behind `docker-credential-berth`, so docker, skopeo, crane and oras refresh access tokens by themselves.",
			"Otherwise log in again: `docker login HOST -u CLIENT_ID --password-stdin`.",
			"`berth doctor HOST` reports the clock skew between client and server.",
		},
	},
	{
		Code: CodeTokenInvalid, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The access token is malformed, not signed by this registry, or for another audience.",
		Causes: []string{
			"The token was issued by another registry or another berth server, or for another service name (its `aud`).",
			"The token was signed with a key retired by `berth keys rotate`, or altered on its way.",
			"The token is not yet valid: the clocks of the issuer and this server disagree.",
			"Something other than an access token (a refresh token, a CI ID token) was sent as the bearer token.",
		},
		Fixes: []string{
			"Get a new token from this registry's `/oauth2/token`: `berth login HOST` or `docker login HOST -u CLIENT_ID --password-stdin`.",
			"Check the server's signing keys with `berth keys list`, and its clock (NTP).",
		},
	},
	{
		Code: CodeRefreshTokenInvalid, Status: http.StatusBadRequest, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The refresh token is unknown, expired or revoked.",
		Causes: []string{
			"The refresh token expired or was revoked (the message says when), or was issued by another berth server.",
			"The refresh token was mistyped or truncated (its checksum does not match), or an access token was sent in its place.",
			"The refresh token was sent with client credentials of another principal than the one it was issued to.",
		},
		Fixes: []string{
			"Log in again for a new refresh token: `berth login HOST`.",
			"Send the refresh token that `berth login` stored, alone or with the credentials of its own principal.",
		},
	},
	{
		Code: CodeAssertionInvalid, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The client assertion (a CI OIDC token) could not be verified.",
		Causes: []string{
			"The CI job's ID token is not signed by a key its issuer publishes, or the issuer's JWKS could not be fetched.",
			"The token was altered or truncated, or is not a JWT at all (a secret or an access token was sent as `client_assertion`).",
			"The issuer URL of the pipeline is not `https` (plain `http` is accepted only on loopback).",
		},
		Fixes: []string{
			"Check the pipeline's issuer against the token's `iss`: `berth pipeline show NAME`.",
			"Test the whole chain from the job: `berth connection verify NAME`, or `berth login HOST --connection NAME`.",
		},
	},
	{
		Code: CodeAssertionExpired, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The client assertion (a CI OIDC token) has expired.",
		Causes: []string{
			"The job fetched its ID token at the start and used it later; CI ID tokens live minutes (GitHub Actions: about 5 to 10).",
			"The clocks of the CI runner and the server disagree.",
		},
		Fixes: []string{
			"Request the ID token right before the exchange, and pass it fresh: `berth login HOST --connection NAME --id-token-file F`.",
			"After login, let the refresh token keep the job going: clients refresh access tokens themselves through `docker-credential-berth`.",
		},
	},
	{
		Code: CodeAssertionReplayed, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The CI ID token was already exchanged for a login; one ID token starts one session.",
		Causes: []string{
			"The job ran `berth login --connection` twice with the same ID token: GitLab's `id_tokens` and a Kubernetes projected token stay the same for the whole job or pod.",
			"Someone copied the ID token from a job's log, artifact or environment and presented it again.",
		},
		Fixes: []string{
			"Log in once per job and let the stored login serve the rest: `docker-credential-berth` refreshes access tokens by itself for the session's lifetime.",
			"Present a fresh ID token (GitHub Actions and Azure Pipelines mint one per request; GitLab and Kubernetes with a new job or a rotated projected token).",
			"If no one in the job logged in before, treat the token as stolen: `berth audit --code assertion_replayed` shows where each attempt came from.",
		},
	},
	{
		Code: CodePipelineUnknown, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "No registered pipeline matches the CI token's issuer and claims.",
		Causes: []string{
			"The job's `sub` claim does not match any pipeline's `--subject` pattern: another branch, tag, environment or pull request than the one registered.",
			"A `--claim K=V` condition or the `--audience` of the pipeline does not hold for this job's token.",
			"The job's CI system (its issuer) has no pipeline registered at all.",
		},
		Fixes: []string{
			"Compare the token's claims with the registered pipelines: `berth pipeline list`, `berth pipeline show NAME`.",
			"Register the job: `berth pipeline create NAME --issuer URL --subject PATTERN`, e.g. `--issuer https://token.actions.githubusercontent.com --subject 'repo:org/app:ref:refs/heads/main'`.",
		},
	},
	{
		Code: CodeAudienceMismatch, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The token was issued for another audience.",
		Causes: []string{
			"The CI job requested its ID token for an audience other than the one the pipeline was registered with (`--audience`).",
			"A token meant for another service (a cloud provider, another registry) was sent to berth.",
		},
		Fixes: []string{
			"Request the ID token for the registry's audience (in GitHub Actions: `core.getIDToken(AUDIENCE)`; in GitLab CI: `id_tokens: … aud: AUDIENCE`).",
			"Or register the audience the job sends: `berth pipeline create NAME --issuer URL --subject PATTERN --audience A`.",
		},
	},
	{
		Code: CodeTooManyAttempts, Status: http.StatusTooManyRequests, OCI: "TOOMANYREQUESTS", Group: GroupAuthentication,
		Summary: "Too many failed attempts; wait before trying again.",
		Causes: []string{
			"A client kept retrying with wrong credentials (10 failures in a burst per client id or source address), often a pipeline with an expired secret in a retry loop.",
			"Many jobs behind one NAT address failed at once.",
			"More than 10 device logins (`berth login HOST` without a secret) were started from one address within a minute: each start counts, because it writes a row for a caller nobody has authenticated yet.",
		},
		Fixes: []string{
			"Fix the credential first: `berth doctor HOST` names what fails; `berth audit --result denied --since 1h` shows the earlier failures and their codes.",
			"Then wait the seconds given in `retry_after` (and the `Retry-After` header); a successful login is never slowed down.",
		},
	},
	{
		Code: CodeRoleMissing, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthorization,
		Summary: "The principal holds no role that allows this action on this repository.",
		Causes: []string{
			"The principal has `pull` but tried to push, or has a role on `team/app` but used `team/other`; the message lists the roles it holds.",
			"The role was assigned on a scope that does not cover the repository (`team/*` covers `team/app`, `team` alone does not).",
			"Listing repositories needs the `catalog` role on `registry`.",
		},
		Fixes: []string{
			"Assign the missing role: `berth role assign --principal P --role push --scope team/app` (or `--scope 'team/*'`).",
			"Replay the decision: `berth access check --principal P --action push --repository team/app`.",
		},
	},
	{
		Code: CodeScopeNotGranted, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthorization,
		Summary: "The token was not issued for this action; request a token with this scope.",
		Causes: []string{
			"The bearer token was requested for another repository or fewer actions (`repository:team/app:pull` used for a push).",
			"A tool reused one token across repositories instead of asking `/oauth2/token` for each scope.",
		},
		Fixes: []string{
			"Request a token with the scope named in the error (`repository:NAME:pull,push`); docker, crane, skopeo and oras do so on their own after this answer.",
			"If the new token is refused with `role_missing`, assign the role: `berth role assign --principal P --role push --scope team/app`.",
		},
	},
	{
		Code: CodePipelineNotAuthorized, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthorization,
		Summary: "The pipeline is not permitted to use this service connection.",
		Causes: []string{
			"The job's token matched a registered pipeline, but the connection it named permits other pipelines only.",
			"A new pipeline (another repository or branch) was registered and not yet permitted on the connection.",
		},
		Fixes: []string{
			"Permit it: `berth connection authorize NAME --pipeline PIPELINE` (or `--all-pipelines`).",
			"Check the connection's pipelines and recent use: `berth connection show NAME`, `berth connection history NAME`.",
		},
	},
	{
		Code: CodeConnectionUnknown, Status: http.StatusBadRequest, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "No service connection has this name.",
		Causes: []string{
			"The connection named by the job (`berth login HOST --connection NAME`) is misspelled, was deleted, or exists on another berth server.",
		},
		Fixes: []string{
			"List the connections: `berth connection list`.",
			"Create it: `berth connection create NAME --principal P --auth federated`, then `berth connection authorize NAME --pipeline PIPELINE`.",
		},
	},
	{
		Code: CodeConnectionDisabled, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthorization,
		Summary: "The service connection is disabled.",
		Causes: []string{
			"An administrator disabled the connection, or the principal it acts as was disabled.",
		},
		Fixes: []string{
			"Inspect it: `berth connection show NAME`; re-enable its principal with `berth principal enable NAME` if that was the cause.",
			"Check that it works again from the job: `berth connection verify NAME`.",
		},
	},

	// People signing in through an identity provider (the browser, or berth
	// login's device authorization grant).
	{
		Code: CodeIdPUnknown, Status: http.StatusNotFound, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "No identity provider has this name.",
		Causes: []string{
			"The sign-in link or the command names a provider that was never added, was removed, or is misspelled.",
		},
		Fixes: []string{
			"List the providers: `berth idp list`; open `/login` on the registry to see the ones people can use.",
			"Add it: `berth idp add NAME --issuer URL --client-id ID --client-secret-stdin`.",
		},
	},
	{
		Code: CodeIdPUnreachable, Status: http.StatusBadGateway, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "berth could not reach the identity provider, or it gave no usable answer.",
		Causes: []string{
			"The provider's discovery document (`ISSUER/.well-known/openid-configuration`), its keys or its token endpoint did not answer, or answered with an error.",
			"The issuer URL is wrong: it must be exactly the `iss` of the provider's tokens (for Entra ID `https://login.microsoftonline.com/TENANT/v2.0`).",
			"A firewall or proxy stops berth's outbound https.",
		},
		Fixes: []string{
			"Check the issuer: `berth idp show NAME`, and `curl ISSUER/.well-known/openid-configuration` from the server.",
			"Re-add it with the right issuer: `berth idp remove NAME`, then `berth idp add NAME --issuer URL --client-id ID --client-secret-stdin`.",
		},
	},
	{
		Code: CodeSignInRefused, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The identity provider refused the sign-in, or its answer could not be accepted.",
		Causes: []string{
			"The person cancelled, or the provider refused them (not assigned to berth's application, consent required); the message quotes the provider's `error`.",
			"The provider refused berth's client id or client secret when berth redeemed the code (`invalid_client`): the secret expired or was rotated upstream.",
			"The ID token's issuer, audience, nonce or signature did not verify, or it lacks the subject.",
		},
		Fixes: []string{
			"Sign in again from `/login`; if it repeats, read the provider's error in the message.",
			"Renew the client secret upstream and re-add the provider: `berth idp remove NAME`, then `berth idp add NAME --issuer URL --client-id ID --client-secret-stdin`.",
		},
	},
	{
		Code: CodeSignInStateInvalid, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthentication,
		Summary: "The sign-in's state or CSRF field does not match this browser's: the request was forged, replayed or is stale.",
		Causes: []string{
			"The callback was opened in another browser, or after the sign-in had already completed or expired (10 minutes).",
			"A page with a form was left open for longer than the session, or submitted from another site.",
			"Cookies are blocked for the registry's host, so berth cannot match the answer to the browser.",
		},
		Fixes: []string{
			"Start again from `/login` (or the link `berth login` printed) in one browser, with cookies allowed for the registry.",
		},
	},
	{
		Code: CodeCrossSiteRefused, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupAuthentication,
		Summary: "A change (to the management API or the registry) came from a web page of another site; berth refuses it before it reads any credential.",
		Causes: []string{
			"A page on another site posted a form or ran a script against `/api/v1` or `/v2/` while the browser held credentials for the registry (the Basic credentials a challenge asked for): a forged request.",
			"An internal tool's web page, served from another origin, calls the API or the registry from the browser.",
			"berth's own address differs from the one browsers use (a proxy), no `url:` is configured, and an old browser sent only `Origin`.",
		},
		Fixes: []string{
			"Make changes with the berth CLI, a registry client (docker, crane, oras), a script or a server-side client, or in berth's console; not from another site's page.",
			"Behind a proxy, set `url:` in berth's configuration to the address browsers use.",
		},
	},
	{
		Code: CodeDeviceCodePending, Status: http.StatusBadRequest, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The device login waits for the person to approve it in the browser (RFC 8628 authorization_pending, or slow_down).",
		Causes: []string{
			"The client polled the token endpoint before anyone approved the code; it keeps polling at the interval given.",
			"The client polled faster than the interval (slow_down): each time, the interval grows by 5 seconds.",
		},
		Fixes: []string{
			"Open the link `berth login` printed, sign in and press Approve.",
		},
	},
	{
		Code: CodeDeviceCodeExpired, Status: http.StatusBadRequest, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The device login's code expired before it was approved.",
		Causes: []string{
			"Nobody opened the printed URL and approved within the code's lifetime (10 minutes).",
		},
		Fixes: []string{
			"Run `berth login HOST` again and approve the new code in the browser.",
		},
	},
	{
		Code: CodeDeviceCodeDenied, Status: http.StatusBadRequest, OCI: "DENIED", Group: GroupAuthentication,
		Summary: "The person who opened the device login's URL denied it.",
		Causes: []string{
			"Deny was pressed on the approval page: the code, the client or the host it named was not what the person expected.",
		},
		Fixes: []string{
			"If it was your own login, run `berth login HOST` again and approve; otherwise someone tried to log in as you: check `berth audit --code device_code_denied`.",
		},
	},
	{
		Code: CodeSessionEnded, Status: http.StatusUnauthorized, OCI: "UNAUTHORIZED", Group: GroupAuthentication,
		Summary: "The person's session ended: signed out, expired, refused by the identity provider, or the principal was disabled.",
		Causes: []string{
			"The session reached `auth.user_session_lifetime` (12 hours by default) or the person signed out.",
			"The identity provider refused to refresh it: the person was removed or disabled upstream.",
			"An administrator disabled the person's principal: `berth principal disable NAME` ends every session at once.",
		},
		Fixes: []string{
			"Sign in again: `berth login HOST` (device login), or `/login` in the browser.",
		},
	},

	// The client machine is at fault: berth found it before any request.
	{
		Code: CodeCredentialHelperNotFound, Status: http.StatusNotFound, OCI: "UNKNOWN", Group: GroupAuthentication,
		Summary: "docker-credential-berth is not on PATH, so berth login did not register it as the credential helper.",
		Causes: []string{
			"berth was installed without the `docker-credential-berth` link beside it, in a folder berth cannot write, or it runs from a folder that is not on `PATH` (a download in the current folder, `go run`).",
			"The link exists but points at a berth that was moved or deleted.",
		},
		Fixes: []string{
			"Run the command the message gives, such as `ln -s \"$(command -v berth)\" ~/.local/bin/docker-credential-berth` (a folder on `PATH`), then `berth login HOST` again.",
			"Check the result from the client side: `berth doctor HOST` shows whether the helper resolves and answers.",
		},
	},
	{
		Code: CodeServerUnreachable, Status: http.StatusBadGateway, OCI: "UNKNOWN", Group: GroupAuthentication,
		Summary: "The berth CLI got no HTTP answer from the server: the connection was refused, the host does not resolve, it timed out, or TLS failed.",
		Causes: []string{
			"berth serve is not running at that address and port, or listens on another one (it prints its address when it starts).",
			"The URL says `https` but the server speaks plain http (berth serve without TLS), or the other way round.",
			"A firewall or proxy is in the way, or the host name does not resolve from this machine.",
		},
		Fixes: []string{
			"Use the address berth serve prints: `berth login http://127.0.0.1:5000` for a local server without TLS.",
			"Check the whole chain from this machine: `berth doctor HOST`.",
		},
	},

	// A pull through a cache namespace needed its upstream, which failed; or
	// a client wrote into a cache namespace.
	{
		Code: CodeUpstreamUnreachable, Status: http.StatusBadGateway, OCI: "UNKNOWN", Group: GroupCache,
		Summary: "The image is not cached yet and its upstream registry gave no usable answer.",
		Causes: []string{
			"The upstream is down, or unreachable from the berth server: a firewall, a proxy, a name that does not resolve there.",
			"The upstream answered with a server error (5xx) or something that is not a registry answer, such as a captive portal's page.",
			"The upstream's URL is wrong: `berth upstream show NAME` shows the one berth calls.",
		},
		Fixes: []string{
			"Check the upstream from the berth server: `berth upstream verify NAME` calls it with the stored credential and names what fails.",
			"Images pulled through the cache before keep being served while the upstream is down, with a `Warning` header; pull the ones you need while it is up.",
		},
	},
	{
		Code: CodeUpstreamAuthFailed, Status: http.StatusBadGateway, OCI: "UNKNOWN", Group: GroupCache,
		Summary: "The upstream registry refused the credential berth holds for it, so the image could not be fetched.",
		Causes: []string{
			"The upstream credential expired or was revoked (a Docker Hub access token, a robot account's password); `berth secret list --expiring-within 30d` lists upstream credentials with a recorded expiry.",
			"The upstream needs a credential and none is stored, or the account has no read access to the repository.",
			"The repository does not exist upstream: Docker Hub answers an unknown repository like a refused credential.",
		},
		Fixes: []string{
			"Replace the credential, keeping the namespace and what it cached: `berth upstream update NAME --username USER --password-stdin`, with `--expires-at DATE` when the new one has an end.",
			"Check it after the change: `berth upstream verify NAME`.",
		},
	},
	{
		Code: CodeUpstreamRateLimited, Status: http.StatusTooManyRequests, OCI: "TOOMANYREQUESTS", Group: GroupCache,
		Summary: "The upstream registry is rate-limiting berth (HTTP 429), so an uncached image could not be fetched.",
		Causes: []string{
			"Docker Hub limits pulls per account or, for anonymous pulls, per address; many first pulls of new images in a short time reach it.",
			"Tags re-checked far more often than needed: a very short `--tag-ttl`.",
		},
		Fixes: []string{
			"Wait the seconds in `retry_after` (and the `Retry-After` header) when the upstream sent its reset time.",
			"Store an account's credential for a higher limit: `berth upstream create NAME --url URL --namespace NS --username USER --password-stdin`.",
			"Raise the TTL so cached tags are checked less often: `berth upstream create NAME … --tag-ttl 6h`.",
		},
	},
	{
		Code: CodeCacheReadOnly, Status: http.StatusForbidden, OCI: "DENIED", Group: GroupCache,
		Summary: "The repository is in a cache namespace, whose content only its upstream fills; it cannot be pushed to.",
		Causes: []string{
			"A pipeline pushes to `hub/…` (or another cache namespace) by mistake, such as a retag of a base image under its cached name.",
		},
		Fixes: []string{
			"Push to a repository outside the cache namespace: `docker tag HOST/hub/library/alpine:3.20 HOST/team/alpine:3.20`, then `docker push HOST/team/alpine:3.20`.",
			"List the cache namespaces with `berth upstream list`.",
		},
	},

	// The stored log, not the request, is at fault, and no other request would
	// succeed: a server-side failure, shown with its facts (it is an *Error).
	{
		Code: CodeAuditTampered, Status: http.StatusInternalServerError, OCI: "UNKNOWN", Group: GroupGeneric,
		Summary: "The audit log's hash chain does not verify: an event was edited or deleted, or the log was truncated, outside berth.",
		Causes: []string{
			"Rows of the audit tables in `metadata.db` were edited or deleted with another tool, or the file was replaced by an older copy.",
			"The audit head record was deleted, so no new event can be written until it is restored.",
		},
		Fixes: []string{
			"Keep a copy of `metadata.db` as evidence, then find the first bad event: `berth audit verify`.",
			"Compare with a backup (`berth audit --data BACKUP`), and restore `metadata.db` from it if the head record is missing.",
		},
	},
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
