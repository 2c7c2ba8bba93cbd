package berth

import (
	"regexp"
	"slices"
	"strings"
)

// ForeignError is an error another system prints, which people meet on their
// way to berth or beside it: Microsoft Entra ID's AADSTS codes, Azure
// Container Registry's, Docker Hub's, Amazon ECR's, GitHub's, GitLab's and
// Harbor's registry errors, and the docker client's own. berth explain finds
// it by its code or in a pasted message, and says what it means there, its
// usual causes and fixes there, and berth's equivalent.
type ForeignError struct {
	// ID names the entry for berth explain: the system's own code where it
	// has one (AADSTS7000215), else a short name (acr-unauthorized).
	ID string
	// System is who prints it.
	System string
	// Message is the error as the system prints it, placeholders in capitals.
	Message string
	// Match are fragments, in lower case, that identify the error in a
	// pasted message; the entry with the longest fragment found wins, so a
	// registry's own wording beats the generic one it extends.
	Match []string
	// Meaning says in one sentence what it means in that system.
	Meaning string
	// Causes are its usual causes there, most common first.
	Causes []string
	// Fixes are the fixes there: portal paths, az, aws, docker commands.
	Fixes []string
	// Berth are berth's reason codes for the same failure, if any.
	Berth []Code
	// InBerth says how berth answers the same failure, or prevents it.
	InBerth string
}

// Systems named by ForeignErrors.
const (
	SystemEntra       = "Microsoft Entra ID"
	SystemACR         = "Azure Container Registry"
	SystemDockerHub   = "Docker Hub"
	SystemECR         = "Amazon ECR"
	SystemGHCR        = "GitHub Container Registry"
	SystemGitLab      = "GitLab container registry"
	SystemHarbor      = "Harbor"
	SystemRegistry    = "any registry (the distribution protocol)"
	SystemDocker      = "the docker client"
	SystemAzureDevOps = "Azure Pipelines"
)

// ForeignErrors is the catalogue of other systems' errors. berth explain and
// docs/from-acr.md are made from it, and berth doctor explains a registry's
// refusal through it.
var ForeignErrors = []ForeignError{
	{
		ID: "AADSTS7000215", System: SystemEntra,
		Message: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'APP_ID'.",
		Match:   []string{"aadsts7000215", "invalid client secret provided"},
		Meaning: "The service principal's client secret does not match any secret of the app registration.",
		Causes: []string{
			"The Secret ID column of Certificates & secrets was copied instead of the Value, which the portal shows only once.",
			"Someone rotated the secret in the portal and the service connection or pipeline variable still holds the old value.",
			"The value was truncated or has a trailing newline in a pipeline variable.",
		},
		Fixes: []string{
			"Entra admin center, App registrations, the app, Certificates & secrets: New client secret, and copy its Value: `az ad app credential reset --id APP_ID --append --display-name ci`.",
			"Azure DevOps, Project settings, Service connections, the connection: Edit, paste the new value, Verify and save.",
			"Better: convert the service connection to workload identity federation, which holds no secret.",
		},
		Berth:   []Code{CodeSecretIDSent, CodeSecretInvalid},
		InBerth: "berth tells a secret's id from its value (`secret_id_sent`) and names the hint of the secrets a principal holds (`secret_invalid`); a federated connection has no secret to mistype: `berth connection create NAME --principal P --auth federated`.",
	},
	{
		ID: "AADSTS7000222", System: SystemEntra,
		Message: "AADSTS7000222: The provided client secret keys for app 'APP_ID' are expired. Visit the Azure portal to create new keys for your app.",
		Match:   []string{"aadsts7000222", "client secret keys for app", "secret keys are expired"},
		Meaning: "The service principal's client secret passed its end date; Entra refuses it from then on, and nothing warned the pipeline's owners.",
		Causes: []string{
			"The secret was created with the portal's default lifetime (6 months) or a longer one, and nobody rotated it.",
			"An Azure Resource Manager service connection created with automatic service principal creation keeps a secret that expires after a few months; re-saving it makes a new one.",
		},
		Fixes: []string{
			"Make a new secret: `az ad app credential reset --id APP_ID --append --years 1`, and put its value where the old one was.",
			"Azure DevOps, Project settings, Service connections, the connection: Edit, then Verify and save (for an automatic connection this renews its secret).",
			"Convert the connection to workload identity federation (the connection's Convert button), so no secret expires again.",
		},
		Berth:   []Code{CodeSecretExpired},
		InBerth: "A berth secret announces its expiry: webhooks at 60, 30, 7 and 1 days (`berth webhook create URL --events secret.expiring`), `berth secret list --expiring-within 30d`, `berth doctor` warns at 30 days, `berth connection save NAME` renews a connection's secret with a grace period, and `secret_expired` names the secret and the day it expired.",
	},
	{
		ID: "AADSTS700016", System: SystemEntra,
		Message: "AADSTS700016: Application with identifier 'APP_ID' was not found in the directory 'TENANT'.",
		Match:   []string{"aadsts700016", "was not found in the directory"},
		Meaning: "No app registration (service principal) with this application id exists in the tenant the request went to.",
		Causes: []string{
			"The client id in the service connection or in `az login --service-principal` is mistyped, or belongs to another tenant.",
			"The tenant id is another directory's, so the right app is looked for in the wrong place.",
			"The app registration was deleted, or its service principal was never created in this tenant (a multi-tenant app without consent).",
		},
		Fixes: []string{
			"Find the app: `az ad sp show --id APP_ID`, `az ad app list --display-name NAME --query [].appId`.",
			"Compare the tenant id with `az account show --query tenantId` and the connection's Tenant ID field.",
		},
		Berth:   []Code{CodeClientUnknown, CodePipelineUnknown},
		InBerth: "`client_unknown` says no principal has the client id and `berth principal list` shows them; a CI token whose issuer or identity no pipeline trusts is `pipeline_unknown`, quoting the token's issuer and subject.",
	},
	{
		ID: "AADSTS700024", System: SystemEntra,
		Message: "AADSTS700024: Client assertion is not within its valid time range. Current time: NOW, assertion valid from FROM, expiry time of assertion UNTIL.",
		Match:   []string{"aadsts700024", "client assertion is not within its valid time range"},
		Meaning: "The federated token (the pipeline's OIDC token) used as client assertion had expired, or was not yet valid, when Entra received it.",
		Causes: []string{
			"A long job fetched the ID token at its start and used it later: Azure Pipelines' and GitHub's ID tokens live minutes.",
			"`az login --federated-token` was run once and a later step needed a new Entra token after the first one expired.",
			"The agent's clock is wrong.",
		},
		Fixes: []string{
			"Request the ID token right before `az login` (AzureCLI@2 with the connection does so), and log in again in later steps.",
			"Synchronise the agent's clock (NTP).",
		},
		Berth:   []Code{CodeAssertionExpired},
		InBerth: "The exchange returns a session of 6 hours (a refresh token), so one ID token carries a whole job; `assertion_expired` names the token's window and the server's time.",
	},
	{
		ID: "AADSTS70021", System: SystemEntra,
		Message: "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'ISSUER'. Assertion Subject: 'SUBJECT'. Assertion Audience: 'AUDIENCE'.",
		Match:   []string{"aadsts70021", "no matching federated identity record found"},
		Meaning: "The pipeline's OIDC token was valid, but no federated credential of the app registration has its issuer, subject and audience.",
		Causes: []string{
			"The service connection, project or organisation was renamed, so the subject `sc://ORG/PROJECT/CONNECTION` changed.",
			"The job runs on another branch, tag or environment than the GitHub federated credential names (`repo:ORG/REPO:ref:refs/heads/main`).",
			"The issuer changed (Azure DevOps moved to `https://login.microsoftonline.com/TENANT/v2.0` for new connections), or the audience is not `api://AzureADTokenExchange`.",
		},
		Fixes: []string{
			"Entra admin center, App registrations (or the managed identity), Certificates & secrets, Federated credentials: compare issuer, subject and audience with the message: `az ad app federated-credential list --id APP_ID`.",
			"Add the credential the job presents: `az ad app federated-credential create --id APP_ID --parameters credential.json`.",
		},
		Berth:   []Code{CodePipelineUnknown, CodeAudienceMismatch},
		InBerth: "`pipeline_unknown` quotes the token's issuer, subject and audience with the hint to register it (`berth pipeline create NAME --azure-devops ORG/PROJECT/CONNECTION --issuer URL`); `audience_mismatch` says which audience was expected.",
	},
	{
		ID: "AADSTS700213", System: SystemEntra,
		Message: "AADSTS700213: No matching federated identity record found for presented assertion subject 'SUBJECT'.",
		Match:   []string{"aadsts700213", "no matching federated identity record found for presented assertion subject"},
		Meaning: "A federated credential of the app has the token's issuer, but none has its subject.",
		Causes: []string{
			"The subject names another branch, environment, pull request or renamed service connection than the federated credential.",
		},
		Fixes: []string{
			"Compare the subject with `az ad app federated-credential list --id APP_ID` and add or correct the credential.",
		},
		Berth:   []Code{CodePipelineUnknown},
		InBerth: "`pipeline_unknown` quotes the token's subject, and `berth audit --code pipeline_unknown` shows an owner the closest registered pipelines' patterns beside it; a pattern with `*` (`repo:ORG/REPO:ref:refs/heads/*`) covers branches without one credential each.",
	},
	{
		ID: "AADSTS700027", System: SystemEntra,
		Message: "AADSTS700027: Client assertion contains an invalid signature.",
		Match:   []string{"aadsts700027", "client assertion contains an invalid signature"},
		Meaning: "The client assertion (a certificate-signed JWT or a federated token) does not verify with a key Entra knows for the app.",
		Causes: []string{
			"The certificate the pipeline signs with is not uploaded to the app registration, or expired and was replaced there.",
			"The token was altered or truncated on its way (a pipeline variable cut it).",
		},
		Fixes: []string{
			"Upload the certificate: `az ad app credential reset --id APP_ID --cert @cert.pem --append`, or use workload identity federation.",
		},
		Berth:   []Code{CodeAssertionInvalid},
		InBerth: "`assertion_invalid` names the key id the token was signed with and the key ids the issuer publishes.",
	},
	{
		ID: "AADSTS7000112", System: SystemEntra,
		Message: "AADSTS7000112: Application 'APP_ID'(NAME) is disabled.",
		Match:   []string{"aadsts7000112"},
		Meaning: "The service principal exists but sign-in is disabled for it.",
		Causes: []string{
			"An administrator set Enabled for users to sign in to No in Enterprise applications, often after a security review.",
		},
		Fixes: []string{
			"Entra admin center, Enterprise applications, the app, Properties: Enabled for users to sign in: Yes (`az ad sp update --id APP_ID --set accountEnabled=true`).",
		},
		Berth:   []Code{CodePrincipalDisabled},
		InBerth: "`principal_disabled` is told only to whoever presents one of its secrets; `berth principal enable NAME` and `berth audit --principal NAME` show when and by whom.",
	},
	{
		ID: "AADSTS50173", System: SystemEntra,
		Message: "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
		Match:   []string{"aadsts50173", "the provided grant has expired due to it being revoked"},
		Meaning: "The refresh token behind a cached `az login` was revoked, so every token it would give is refused.",
		Causes: []string{
			"The user whose `az login` a self-hosted agent reuses changed or reset their password, or an administrator revoked their sessions.",
			"A conditional access policy ended the session.",
		},
		Fixes: []string{
			"`az logout`, then `az login` again; on build agents log in as a service principal or managed identity, never as a person (`az login --identity`).",
		},
		Berth:   []Code{CodeRefreshTokenInvalid, CodeSecretRevoked},
		InBerth: "`refresh_token_invalid` says when the refresh token expired or was revoked, and `secret_revoked` names the removed secret it came from; CI logins are sessions of the connection, not of a person.",
	},
	{
		ID: "AADSTS90002", System: SystemEntra,
		Message: "AADSTS90002: Tenant 'TENANT' not found.",
		Match:   []string{"aadsts90002"},
		Meaning: "No Entra tenant has the id or domain the request named.",
		Causes: []string{
			"The tenant id in the service connection or `az login --tenant` is mistyped, or names a deleted tenant.",
			"The request went to a national cloud's tenant through the public endpoint (or the other way round).",
		},
		Fixes: []string{
			"Find the tenant id: `az account show --query tenantId`, or Entra admin center, Overview.",
		},
		Berth:   []Code{CodePipelineUnknown},
		InBerth: "A token from an issuer no pipeline trusts is `pipeline_unknown`, listing the issuers pipelines are registered for.",
	},
	{
		ID: "acr-unauthorized", System: SystemACR,
		Message: "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information.",
		Match:   []string{"authentication required, visit https://aka.ms/acr/authorization", "aka.ms/acr/authorization"},
		Meaning: "ACR refused the request and says no more: no credential, an expired token, or an identity without a role on the registry all read the same.",
		Causes: []string{
			"The job never ran `az acr login` or `docker login`, or the token it got (3 hours) expired mid-job.",
			"The service principal's secret expired (AADSTS7000222 upstream), so the login silently failed earlier.",
			"The identity holds AcrPull but pushed, or holds no role on this registry at all (role assignments take minutes to apply).",
			"docker logged in to another spelling of the host than the image names.",
		},
		Fixes: []string{
			"Check the whole chain: `az acr check-health -n REGISTRY --yes`, then `az acr login -n REGISTRY`.",
			"Give the identity its role: `az role assignment create --assignee APP_ID --role AcrPush --scope $(az acr show -n REGISTRY --query id -o tsv)`.",
			"Run `berth doctor REGISTRY.azurecr.io --repository REPO --action push`: it follows the challenge, decodes the token's expiry and access and explains the refusal.",
		},
		Berth:   []Code{CodeCredentialsMissing, CodeTokenExpired, CodeRoleMissing, CodeSecretExpired},
		InBerth: "berth answers each cause with its own reason code, the facts and the fixing command: `credentials_missing`, `token_expired`, `role_missing` (naming the roles held), `secret_expired` (naming the secret and its expiry).",
	},
	{
		ID: "acr-invalid-client", System: SystemACR,
		Message: "unauthorized: Invalid clientid or client secret.",
		Match:   []string{"invalid clientid or client secret"},
		Meaning: "ACR passed the service principal's id and secret to Entra, and Entra refused them.",
		Causes: []string{
			"The secret expired (AADSTS7000222) or was rotated, and the pipeline's `docker login` or Docker@2 service connection holds the old one.",
			"The user name is not the service principal's application (client) id.",
		},
		Fixes: []string{
			"Make a new secret (`az ad app credential reset --id APP_ID --append`) and update the Docker registry service connection: Edit, Verify and save.",
			"Log in with the application id as user: `docker login REGISTRY.azurecr.io -u APP_ID --password-stdin`.",
		},
		Berth:   []Code{CodeSecretExpired, CodeSecretInvalid, CodeClientUnknown},
		InBerth: "berth keeps the three apart: `secret_expired` (when), `secret_invalid` (which secrets the principal holds), `client_unknown`.",
	},
	{
		ID: "acr-refresh-token-error", System: SystemACR,
		Message: "CONNECTIVITY_REFRESH_TOKEN_ERROR: Access to registry 'REGISTRY.azurecr.io' was denied. Response code: 401. Please try running 'az login' again to refresh permissions.",
		Match:   []string{"connectivity_refresh_token_error", "try running 'az login' again to refresh permissions"},
		Meaning: "`az acr login` or `az acr check-health` could not exchange the Entra token for an ACR refresh token at `/oauth2/exchange`.",
		Causes: []string{
			"The cached `az login` is stale (AADSTS50173) or for another tenant than the registry's.",
			"The identity has no role on the registry, or the registry's network rules refuse the agent.",
		},
		Fixes: []string{
			"`az login` again (or `az login --identity` on Azure agents), `az account set -s SUBSCRIPTION`, then `az acr login -n REGISTRY`.",
		},
		Berth:   []Code{CodeRefreshTokenInvalid, CodePipelineUnknown},
		InBerth: "berth's `/oauth2/exchange` takes the same request (grant_type=access_token, service, access_token, tenant) and refuses with the reason: `assertion_expired`, `pipeline_unknown`, `pipeline_not_authorized`.",
	},
	{
		ID: "acr-login-expose-token", System: SystemACR,
		Message: "docker login REGISTRY.azurecr.io -u 00000000-0000-0000-0000-000000000000 -p TOKEN fails with unauthorized after az acr login --expose-token.",
		Match:   []string{"00000000-0000-0000-0000-000000000000", "--expose-token"},
		Meaning: "The refresh token printed by `az acr login --expose-token` lasts 3 hours; a later `docker login` with it, or with another registry's token, is refused.",
		Causes: []string{
			"The token was fetched in an earlier stage and stored as a variable.",
			"The token was fetched for another registry name than the one logged in to.",
		},
		Fixes: []string{
			"Fetch it right before the login: `TOKEN=$(az acr login -n REGISTRY --expose-token --query accessToken -o tsv)`.",
		},
		Berth:   []Code{CodeRefreshTokenInvalid},
		InBerth: "berth accepts the same login: `docker login HOST -u 00000000-0000-0000-0000-000000000000 -p REFRESH_TOKEN`, with a refresh token from `berth login` or `/oauth2/exchange`; a stale one is `refresh_token_invalid` saying when it ended.",
	},
	{
		ID: "registry-denied", System: SystemRegistry,
		Message: "denied: requested access to the resource is denied",
		Match:   []string{"requested access to the resource is denied"},
		Meaning: "The registry knows who you are and refuses the action: the credential has no right to push (or pull) this repository.",
		Causes: []string{
			"Docker Hub: the image is not under your user or organisation (`docker push app` instead of `docker push USER/app`), or the access token is read-only.",
			"ACR: the identity holds AcrPull, not AcrPush, or a repository-scoped token lacks `content/write`.",
			"GitHub: the package is not linked to the repository, or GITHUB_TOKEN lacks `packages: write`.",
		},
		Fixes: []string{
			"Tag the image under a namespace you own: `docker tag app USER/app`.",
			"Give the identity push rights (`az role assignment create --role AcrPush …`, `permissions: packages: write`).",
		},
		Berth:   []Code{CodeRoleMissing, CodeScopeNotGranted},
		InBerth: "`role_missing` names the roles the principal holds and the command that assigns the missing one; `berth access check --principal P --action push --repository R` replays the decision.",
	},
	{
		ID: "registry-unauthorized", System: SystemRegistry,
		Message: "unauthorized: authentication required",
		Match:   []string{"unauthorized: authentication required", "authentication required"},
		Meaning: "The registry wants credentials it did not get, or did not accept the token it got.",
		Causes: []string{
			"No login for this host in the docker configuration, or the login is for another spelling of the host.",
			"The token expired mid-job, or was issued for another repository.",
			"Many registries answer this also for a repository that does not exist or that the caller may not see.",
		},
		Fixes: []string{
			"`docker login HOST`, then retry; `berth doctor HOST --repository REPO` shows which credential the client uses and what the registry answers.",
		},
		Berth:   []Code{CodeCredentialsMissing, CodeTokenExpired, CodeRoleMissing},
		InBerth: "berth never answers this without a reason: the detail of every 401 and 403 carries the reason code, the facts and the fix.",
	},
	{
		ID: "insufficient_scope", System: SystemRegistry,
		Message: `insufficient_scope: authorization failed (WWW-Authenticate: Bearer …,error="insufficient_scope")`,
		Match:   []string{"insufficient_scope"},
		Meaning: "The bearer token is valid but was not issued for this repository or action.",
		Causes: []string{
			"A tool reused one token across repositories, or asked for pull and then pushed.",
			"The token endpoint granted less than asked, because the identity's rights are smaller (the Docker token spec grants the intersection silently).",
		},
		Fixes: []string{
			"Let the client ask for a token with the scope in the challenge (docker, crane, skopeo and oras do); decode the token's `access` claim to see what it grants: `berth doctor HOST --repository REPO --action push`.",
		},
		Berth:   []Code{CodeScopeNotGranted, CodeRoleMissing},
		InBerth: "berth refuses at the token endpoint when nothing can be granted (`role_missing`), and `scope_not_granted` names the scope the token lacks.",
	},
	{
		ID: "toomanyrequests", System: SystemDockerHub,
		Message: "toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit",
		Match:   []string{"toomanyrequests", "pull rate limit", "too many requests"},
		Meaning: "The registry limits requests per account or per address, and this one is over.",
		Causes: []string{
			"Docker Hub: anonymous pulls are limited per address, and CI runners behind one NAT address share it.",
			"The job pulls without logging in, so the account's higher limit does not apply.",
			"ACR: the registry's SKU throughput is exceeded (ACR answers 429 too).",
		},
		Fixes: []string{
			"Log in to Docker Hub in CI, mirror the base images to your own registry, or use a pull-through cache: `berth upstream create hub --url https://registry-1.docker.io --namespace hub`, then pull `HOST/hub/alpine:3.20`.",
			"Read the `ratelimit-limit` and `ratelimit-remaining` headers of a manifest HEAD: `berth doctor docker.io --repository library/alpine` shows them.",
		},
		Berth:   []Code{CodeTooManyAttempts, CodeUpstreamRateLimited},
		InBerth: "berth limits only failed logins (`too_many_attempts`, with `retry_after`), never a pipeline that authenticates. Its pull-through cache fetches each image from Docker Hub once and re-checks tags with a HEAD, which Docker Hub does not count; when Docker Hub still refuses, cached images are served and uncached ones get `upstream_rate_limited` with Docker Hub's reset time.",
	},
	{
		ID: "dockerhub-incorrect-password", System: SystemDockerHub,
		Message: "unauthorized: incorrect username or password",
		Match:   []string{"incorrect username or password"},
		Meaning: "Docker Hub refused the user name and password (or access token).",
		Causes: []string{
			"The account uses two-factor authentication or SSO, which needs a personal access token instead of the password.",
			"The personal access token was revoked or expired.",
			"The user name is an e-mail address instead of the Docker ID.",
		},
		Fixes: []string{
			"Create a personal access token (Account settings, Personal access tokens) and `docker login -u DOCKER_ID --password-stdin`.",
		},
		Berth:   []Code{CodeSecretInvalid, CodeClientUnknown, CodeSecretExpired},
		InBerth: "berth says which part was wrong: `client_unknown`, `secret_invalid`, `secret_expired` or `secret_revoked`.",
	},
	{
		ID: "no-basic-auth-credentials", System: SystemDocker,
		Message: "no basic auth credentials",
		Match:   []string{"no basic auth credentials"},
		Meaning: "docker has no credential for this host in its configuration and the registry asked for one.",
		Causes: []string{
			"The login was made for another host spelling (with or without a port, `https://`, a path).",
			"ECR: the login expired or was never made in this job (`aws ecr get-login-password`).",
			"The job runs as another user, or with another DOCKER_CONFIG, than the step that logged in.",
		},
		Fixes: []string{
			"`docker login HOST` as the same user and DOCKER_CONFIG as the push; `berth doctor HOST` shows the docker configuration and credential helpers doctor finds.",
		},
		Berth:   []Code{CodeCredentialsMissing},
		InBerth: "`berth login HOST` registers `docker-credential-berth` for the host, which refreshes its tokens, so a later step still has a credential.",
	},
	{
		ID: "credential-helper-missing", System: SystemDocker,
		Message: `error getting credentials - err: exec: "docker-credential-NAME": executable file not found in $PATH`,
		Match:   []string{"error getting credentials", "executable file not found in $path", "docker-credential-"},
		Meaning: "The docker configuration names a credential helper (credsStore or credHelpers) whose program is not installed.",
		Causes: []string{
			"`credsStore: desktop` from Docker Desktop in a configuration copied to WSL, a CI image or a server.",
			"A helper such as `ecr-login`, `acr-env`, `gcloud` or `berth` is named but its `docker-credential-NAME` binary is not on PATH.",
		},
		Fixes: []string{
			"Install the helper, or remove the `credsStore` / `credHelpers` entry from `~/.docker/config.json`.",
			"`berth doctor HOST` runs each helper with `get` and names the missing binaries.",
		},
		Berth:   []Code{CodeCredentialHelperNotFound, CodeCredentialsMissing},
		InBerth: "`berth login` puts `docker-credential-berth` where the configuration names it, and `berth doctor` checks that it answers.",
	},
	{
		ID: "ecr-token-expired", System: SystemECR,
		Message: "denied: Your authorization token has expired. Reauthenticate and try again.",
		Match:   []string{"your authorization token has expired"},
		Meaning: "The password of `docker login` to ECR is a 12-hour token, and it ran out.",
		Causes: []string{
			"The login was made once (`aws ecr get-login-password`) on a long-lived agent or in an earlier stage.",
			"The docker configuration holds an old `auths` entry for the registry.",
		},
		Fixes: []string{
			"`aws ecr get-login-password --region REGION | docker login --username AWS --password-stdin ACCOUNT.dkr.ecr.REGION.amazonaws.com` in the job itself.",
			`Use the Amazon ECR credential helper: "credHelpers": {"ACCOUNT.dkr.ecr.REGION.amazonaws.com": "ecr-login"}.`,
		},
		Berth:   []Code{CodeTokenExpired, CodeSecretExpired},
		InBerth: "berth's credential helper refreshes access tokens by itself within the login; `berth doctor` decodes an ECR password's expiry too.",
	},
	{
		ID: "ecr-not-authorized", System: SystemECR,
		Message: "denied: User: arn:aws:iam::ACCOUNT:user/NAME is not authorized to perform: ecr:InitiateLayerUpload on resource: arn:aws:ecr:REGION:ACCOUNT:repository/REPO",
		Match:   []string{"is not authorized to perform: ecr:"},
		Meaning: "The IAM identity has no policy allowing this ECR action on the repository.",
		Causes: []string{
			"The role has `AmazonEC2ContainerRegistryReadOnly` and pushes, or its policy names another repository.",
			"The repository policy denies the account or role.",
		},
		Fixes: []string{
			"Attach a policy with the action named (`ecr:InitiateLayerUpload`, `ecr:PutImage`, …) for the repository, or `AmazonEC2ContainerRegistryPowerUser`.",
		},
		Berth:   []Code{CodeRoleMissing},
		InBerth: "`role_missing` names the roles held and the `berth role assign` that fixes it.",
	},
	{
		ID: "ecr-repository-not-found", System: SystemECR,
		Message: "name unknown: The repository with name 'REPO' does not exist in the registry with id 'ACCOUNT'",
		Match:   []string{"does not exist in the registry with id"},
		Meaning: "ECR creates no repository on push: it must exist first.",
		Causes: []string{
			"The repository was never created, or in another region or account.",
		},
		Fixes: []string{
			"`aws ecr create-repository --repository-name REPO --region REGION`.",
		},
		Berth:   []Code{CodeNameUnknown},
		InBerth: "berth creates a repository on its first push.",
	},
	{
		ID: "ghcr-permission-denied", System: SystemGHCR,
		Message: "denied: permission_denied: write_package",
		Match:   []string{"permission_denied: write_package", "installation not allowed to write organization package", "permission_denied"},
		Meaning: "GitHub refused to let this token write the package.",
		Causes: []string{
			"The workflow's GITHUB_TOKEN lacks `permissions: packages: write`.",
			"The package exists and is not linked to this repository (Package settings, Manage Actions access).",
			"A personal access token lacks the `write:packages` scope.",
		},
		Fixes: []string{
			"Add `permissions: { packages: write }` to the job, and grant the repository access in the package's settings.",
		},
		Berth:   []Code{CodeRoleMissing, CodePipelineNotAuthorized},
		InBerth: "berth separates the pipeline's permission on the connection (`pipeline_not_authorized`, `berth connection permit`) from the principal's roles (`role_missing`).",
	},
	{
		ID: "gitlab-http-basic-denied", System: SystemGitLab,
		Message: "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password.",
		Match:   []string{"http basic: access denied"},
		Meaning: "GitLab refused the user name and password or token given to its registry's token endpoint.",
		Causes: []string{
			"The account has two-factor authentication and a password was sent instead of a personal, project or deploy token.",
			"The token expired (GitLab tokens expire within a year) or lacks `read_registry` / `write_registry`.",
			"CI_JOB_TOKEN was used outside its job.",
		},
		Fixes: []string{
			"In CI: `docker login -u $CI_REGISTRY_USER -p $CI_REGISTRY_PASSWORD $CI_REGISTRY`; elsewhere a token with `read_registry`/`write_registry`.",
		},
		Berth:   []Code{CodeSecretInvalid, CodeSecretExpired},
		InBerth: "`secret_expired` names the secret and when it expired; GitLab jobs can log in to berth with their ID token (`berth pipeline create NAME --gitlab GROUP/PROJECT`).",
	},
	{
		ID: "harbor-unauthorized-repository", System: SystemHarbor,
		Message: "unauthorized: unauthorized to access repository: PROJECT/REPO, action: push: unauthorized to access repository: PROJECT/REPO, action: push",
		Match:   []string{"unauthorized to access repository"},
		Meaning: "Harbor authenticated the user or robot account, and its project role does not allow the action.",
		Causes: []string{
			"The robot account has pull only, is for another project, or expired (robot accounts expire, 30 days by default).",
			"The user is a Guest or Limited Guest of the project.",
		},
		Fixes: []string{
			"Projects, the project, Robot accounts: refresh or extend the robot account and give it push; or raise the member's role to Developer.",
		},
		Berth:   []Code{CodeRoleMissing, CodeSecretExpired},
		InBerth: "`role_missing` names what the principal holds; expiring secrets are announced before they expire.",
	},
	{
		ID: "x509-unknown-authority", System: SystemDocker,
		Message: "x509: certificate signed by unknown authority",
		Match:   []string{"certificate signed by unknown authority", "tls: failed to verify certificate"},
		Meaning: "The registry's TLS certificate is not signed by an authority this machine trusts.",
		Causes: []string{
			"The registry uses a company or self-signed CA that the runner image does not hold.",
			"A TLS-inspecting proxy sits between the runner and the registry.",
		},
		Fixes: []string{
			"Install the CA: copy it to `/etc/docker/certs.d/HOST/ca.crt` (docker) or `/usr/local/share/ca-certificates/` and run `update-ca-certificates`.",
		},
		InBerth: "`berth doctor HOST` checks TLS first and names the failing step.",
	},
	{
		ID: "http-response-to-https-client", System: SystemDocker,
		Message: "http: server gave HTTP response to HTTPS client",
		Match:   []string{"server gave http response to https client"},
		Meaning: "The client spoke TLS to a registry that serves plain HTTP.",
		Causes: []string{
			"A local registry on plain HTTP that is not listed as insecure.",
		},
		Fixes: []string{
			"Serve TLS; for a loopback test registry, docker treats `127.0.0.1` as insecure already, and crane, skopeo and oras take `--insecure`, `--tls-verify=false` or `--plain-http`.",
		},
		InBerth: "`berth doctor` tells plain http on loopback (fine) from plain http elsewhere (a failure).",
	},
	{
		ID: "registry-manifest-unknown", System: SystemRegistry,
		Message: "manifest unknown: manifest tagged by \"TAG\" is not found",
		Match:   []string{"manifest unknown", "manifest_unknown"},
		Meaning: "The repository has no manifest with this tag or digest.",
		Causes: []string{
			"The tag was never pushed, is misspelled, or was deleted by a retention policy.",
		},
		Fixes: []string{
			"List the tags: `crane ls HOST/REPO`; push the tag.",
		},
		Berth:   []Code{CodeManifestUnknown},
		InBerth: "berth answers `manifest_unknown` only to a caller that may pull the repository; others get the reason they may not.",
	},
	{
		ID: "azure-pipelines-connection-not-authorized", System: SystemAzureDevOps,
		Message: "There was a resource authorization issue: \"The pipeline is not valid. Job JOB: Step STEP input SERVICE_CONNECTION references service connection NAME which could not be found. The service connection does not exist, has been disabled or has not been authorized for use.\"",
		Match:   []string{"has not been authorized for use", "there was a resource authorization issue"},
		Meaning: "The pipeline names a service connection it may not use: Azure DevOps asks an administrator to permit it first.",
		Causes: []string{
			"A new pipeline, or one moved to another repository or branch, uses a connection without Grant access permission to all pipelines.",
			"The connection was renamed, deleted or disabled.",
		},
		Fixes: []string{
			"Project settings, Service connections, the connection, Security (or the pipeline's Authorize resources button): permit the pipeline.",
		},
		Berth:   []Code{CodePipelineNotAuthorized, CodeConnectionUnknown, CodeConnectionDisabled},
		InBerth: "`pipeline_not_authorized` records the request; `berth connection requests NAME` lists them and `berth connection permit NAME --pipeline P` permits one.",
	},
}

// FromACRStep is one failure, or one practice, of a team that pushes to
// Azure Container Registry from Azure Pipelines, with what they do on ACR and
// what they do on berth, step by step. docs/from-acr.md is made from them.
type FromACRStep struct {
	Title string
	// Errors are the IDs of ForeignErrors the step answers.
	Errors []string
	// ACR are the steps on Azure: portal paths and az commands.
	ACR []string
	// Berth are the steps on berth, as commands where one exists.
	Berth []string
}

// FromACR is the migration guide: the failures and fixes of the ACR and
// Azure Pipelines world mapped to berth.
var FromACR = []FromACRStep{
	{
		Title:  "The service principal's secret expired",
		Errors: []string{"AADSTS7000222", "acr-invalid-client", "acr-unauthorized"},
		ACR: []string{
			"The pipeline fails at Docker@2 login or `az acr login` with AADSTS7000222, or later with `unauthorized: authentication required`.",
			"Entra admin center, App registrations, the app, Certificates & secrets: New client secret; copy the Value.",
			"Paste it into the service connection or the pipeline variable, and run the pipeline again.",
		},
		Berth: []string{
			"The refusal is `secret_expired`, naming the secret's hint and the day it expired: `berth explain secret_expired`.",
			"Renew the connection's secret, the old one keeping working for a grace period: `berth connection save NAME --grace 7d`.",
			"Or for a principal used directly: `berth secret add PRINCIPAL --expires-in 90d`, then `berth secret remove PRINCIPAL OLD_SECRET_ID` once the pipelines use the new one.",
		},
	},
	{
		Title:  "Re-save the service connection",
		Errors: []string{"AADSTS7000215", "AADSTS7000222"},
		ACR: []string{
			"Project settings, Service connections, the connection: Edit, then Verify and save, which makes the automatic service principal a new secret.",
		},
		Berth: []string{
			"`berth connection save NAME` makes the connection's principal a new secret and retires the old one after `--grace`.",
			"`berth connection show NAME` shows the secret's expiry; `berth connection history NAME` which pipelines used it.",
		},
	},
	{
		Title:  "The identity cannot push (AcrPush)",
		Errors: []string{"registry-denied", "acr-unauthorized", "insufficient_scope"},
		ACR: []string{
			"`az role assignment create --assignee APP_ID --role AcrPush --scope $(az acr show -n REGISTRY --query id -o tsv)` and wait for it to apply.",
		},
		Berth: []string{
			"The refusal is `role_missing`, listing the roles the principal holds.",
			"`berth role assign --principal P --role push --scope team/app` (or `--scope 'team/*'`); it counts at the next request.",
			"Replay the decision: `berth access check --principal P --action push --repository team/app`.",
		},
	},
	{
		Title:  "Verify and regenerate, or what the pipeline will meet before it runs",
		Errors: []string{"AADSTS70021", "AADSTS700016"},
		ACR: []string{
			"The service connection's Verify button checks the connection once, from Azure DevOps, not from the agent.",
		},
		Berth: []string{
			"`berth connection verify NAME` checks the issuer's keys, the pipelines, the principal, its secret's expiry and the roles the connection is meant for, each line with the reason code a use would meet.",
			"From the agent: `berth doctor HOST --repository team/app --action push` walks the same chain from the client side.",
		},
	},
	{
		Title:  "`az acr login` in the pipeline",
		Errors: []string{"acr-refresh-token-error", "acr-login-expose-token", "AADSTS50173"},
		ACR: []string{
			"AzureCLI@2 with the service connection: `az acr login -n REGISTRY`, or `az acr login --expose-token` then `docker login -u 00000000-0000-0000-0000-000000000000`.",
			"Behind it, the Entra token goes to `https://REGISTRY.azurecr.io/oauth2/exchange` for an ACR refresh token.",
		},
		Berth: []string{
			"Federated, with no secret: `berth login HOST --connection NAME` finds the job's ID token (SYSTEM_OIDCREQUESTURI) and stores a session behind `docker-credential-berth`.",
			"ACR-shaped scripts keep working: `POST /oauth2/exchange` with `grant_type=access_token&service=HOST&access_token=ENTRA_TOKEN` answers `{\"refresh_token\": …}`, and `docker login HOST -u 00000000-0000-0000-0000-000000000000 -p REFRESH_TOKEN` takes it.",
			"Register the Entra identity once: `berth pipeline create NAME --entra TENANT/APP_OR_OBJECT_ID --audience AUDIENCE`, and permit it: `berth connection authorize CONNECTION --pipeline NAME`.",
			"`az acr login` once per step works as on ACR: the Azure CLI sends the Entra token it cached, and berth exchanges that token again when it comes from the address that first exchanged it. From any other address it is refused as `assertion_replayed` (a copied token; the refusal says the rule and the address it came from), and so is any CI job's ID token presented a second time, whichever endpoint takes it. The address is the one berth sees: behind a proxy or a NAT gateway every agent shares it, so the rule tells agents apart only where they reach berth from addresses of their own.",
		},
	},
	{
		Title:  "Pipeline permissions on the service connection",
		Errors: []string{"azure-pipelines-connection-not-authorized"},
		ACR: []string{
			"The run stops with a resource authorization issue until an administrator clicks Permit on the connection.",
		},
		Berth: []string{
			"The exchange is refused with `pipeline_not_authorized` and the request is recorded: `berth connection requests NAME` lists it.",
			"`berth connection permit NAME --pipeline PIPELINE`, or `berth connection authorize NAME --all-pipelines`.",
		},
	},
	{
		Title:  "Managed identity and workload identity federation",
		Errors: []string{"AADSTS70021", "AADSTS700213", "AADSTS700024"},
		ACR: []string{
			"Give the managed identity or the federated app AcrPush; add a federated credential for `sc://ORG/PROJECT/CONNECTION` with audience `api://AzureADTokenExchange`.",
		},
		Berth: []string{
			"An Azure Pipelines job: `berth pipeline create NAME --azure-devops ORG/PROJECT/CONNECTION --issuer https://vstoken.dev.azure.com/ORG_ID --audience api://AzureADTokenExchange`.",
			"A managed identity or service principal with an Entra token: `berth pipeline create NAME --entra TENANT/OBJECT_OR_APP_ID --audience AUDIENCE` (matched by `oid`, `appid`, `azp` or `sub`).",
			"`berth connection create NAME --principal P --auth federated`, then `berth connection authorize NAME --pipeline PIPELINE`.",
		},
	},
	{
		Title:  "Rotation without downtime",
		Errors: []string{"AADSTS7000222"},
		ACR: []string{
			"Add a second secret, update every consumer by hand, delete the old one, and hope none was missed.",
		},
		Berth: []string{
			"`berth secret list --expiring-within 30d` lists the secrets to rotate and the connections that depend on each.",
			"`berth webhook create URL --events secret.expiring,secret.expired` announces them at 60, 30, 7 and 1 days.",
			"`berth connection save NAME --grace 7d` rotates a connection's secret with an overlap; or remove the secret for good: `berth connection convert NAME --to federated` (the old secret works for `--grace`, 7 days by default, so that running jobs finish; `--grace 0` ends it at once, for a leaked one).",
		},
	},
	{
		Title:  "A secret leaked into a repository or a log",
		Errors: []string{"AADSTS7000215"},
		ACR: []string{
			"GitHub or Azure DevOps secret scanning reports an Entra client secret; remove it in Certificates & secrets and rotate every consumer.",
		},
		Berth: []string{
			"`berth scan --git .` finds berth secrets and refresh tokens (and Entra client secrets) in files and history, with SARIF output for code scanning.",
			"`berth scan --revoke .` removes the berth secrets it found on the server at once.",
		},
	},
}

// aadstsCode finds AADSTS codes in pasted text.
var aadstsCode = regexp.MustCompile(`(?i)\baadsts\d+\b`)

// MatchForeign returns the catalogue entries text names, best first: by ID
// (an AADSTS code anywhere in the text, or the whole text being an entry's
// ID), then by the longest Match fragment found in it. It returns nil when
// nothing in the text is known.
func MatchForeign(text string) []ForeignError {
	norm := strings.Join(strings.Fields(strings.ToLower(text)), " ")
	if norm == "" {
		return nil
	}
	ids := aadstsCode.FindAllString(norm, -1)
	type scored struct {
		e     ForeignError
		score int
	}
	var found []scored
	for _, e := range ForeignErrors {
		id := strings.ToLower(e.ID)
		score := 0
		switch {
		case norm == id:
			score = 1 << 20
		case slices.Contains(ids, id):
			score = 1 << 19
		}
		for _, m := range e.Match {
			if strings.Contains(norm, m) {
				score = max(score, len(m))
			}
		}
		if score > 0 {
			found = append(found, scored{e, score})
		}
	}
	if len(found) == 0 {
		return nil
	}
	slices.SortStableFunc(found, func(a, b scored) int { return b.score - a.score })
	out := make([]ForeignError, len(found))
	for i, s := range found {
		out[i] = s.e
	}
	return out
}

// Text is everything the entry says, for searching.
func (e ForeignError) Text() string {
	parts := []string{e.ID, e.System, e.Message, e.Meaning, e.InBerth}
	parts = append(parts, e.Causes...)
	parts = append(parts, e.Fixes...)
	for _, c := range e.Berth {
		parts = append(parts, string(c))
	}
	return strings.Join(parts, "\n")
}

// Text is everything the code's entry says, for searching.
func (c CodeInfo) Text() string {
	parts := []string{string(c.Code), c.OCI, c.Summary, string(c.Group)}
	parts = append(parts, c.Causes...)
	parts = append(parts, c.Fixes...)
	return strings.Join(parts, "\n")
}

// SearchWords reports whether text holds every word of query, in any case.
func SearchWords(text, query string) bool {
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		return false
	}
	t := strings.ToLower(text)
	for _, w := range words {
		if !strings.Contains(t, w) {
			return false
		}
	}
	return true
}
