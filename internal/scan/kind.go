package scan

// Kind names what a finding is. Its values are stable: they are the SARIF
// rule ids and what a baseline's fingerprints were computed with.
type Kind string

// The kinds of credential Scan finds.
const (
	KindBerthSecret       Kind = "berth-client-secret"
	KindBerthRefreshToken Kind = "berth-refresh-token"
	KindBerthWebhookKey   Kind = "berth-webhook-secret"
	KindBerthPAT          Kind = "berth-personal-access-token"
	KindPrivateKey        Kind = "private-key"
	KindDockerConfigAuth  Kind = "docker-config-auth"
	KindAWSAccessKeyID    Kind = "aws-access-key-id"
	KindGitHubToken       Kind = "github-token"
	KindGitHubFineGrained Kind = "github-fine-grained-token"
	KindGitLabToken       Kind = "gitlab-token"
	KindAzureClientSecret Kind = "azure-client-secret"
	KindJWT               Kind = "jwt"
	KindBerthSession      Kind = "berth-session"
)

// Rule describes a Kind: what it is, whether a match is verified (by a
// checksum or a structure that decodes) or only shaped like one, and what to
// do about a finding.
type Rule struct {
	Kind        Kind
	Name        string
	Description string
	Help        string
	// Verified is true when a finding's checksum or structure was confirmed.
	Verified bool
}

// Rules lists every Kind, in a stable order (SARIF's rule index).
var Rules = []Rule{
	{KindBerthSecret, "BerthClientSecret", "A berth client secret (brt_…), confirmed by its checksum.",
		"Remove it from the file and its history, and revoke it: berth secret remove PRINCIPAL SECRET_ID, or berth scan --revoke.", true},
	{KindBerthRefreshToken, "BerthRefreshToken", "A berth refresh token (brr_…), confirmed by its checksum.",
		"Remove it; run berth logout on the machine it came from, or remove the secret it was obtained with, which revokes it.", true},
	{KindBerthWebhookKey, "BerthWebhookSecret", "A berth webhook signing secret (brw_…), confirmed by its checksum.",
		"Remove it; delete the webhook (berth webhook delete ID) and create it again for a new signing secret.", true},
	{KindBerthPAT, "BerthPersonalAccessToken", "A berth personal access token (brp_…), confirmed by its checksum.",
		"Remove it and revoke it: berth token list shows its id by its first characters, berth token revoke ID.", true},
	{KindPrivateKey, "PrivateKey", "A PEM private key block (-----BEGIN … PRIVATE KEY-----).",
		"Remove the key, replace it with a new one and revoke whatever trusted the old one.", true},
	{KindDockerConfigAuth, "DockerConfigAuth", "A docker config auths entry holding user:password in its auth value.",
		"Remove the entry (docker logout REGISTRY) and change the password or token it holds; prefer a credential helper such as docker-credential-berth.", true},
	{KindAWSAccessKeyID, "AWSAccessKeyID", "An AWS access key id (AKIA… or ASIA…).",
		"Deactivate the access key in AWS IAM and remove it; its secret access key is usually nearby.", false},
	{KindGitHubToken, "GitHubToken", "A GitHub token (ghp_, gho_, ghu_, ghs_, ghr_), confirmed by its CRC-32 checksum.",
		"Revoke the token in GitHub's settings (or it is revoked for you if pushed to GitHub) and remove it.", true},
	{KindGitHubFineGrained, "GitHubFineGrainedToken", "A GitHub fine-grained personal access token (github_pat_…).",
		"Revoke the token in GitHub's settings and remove it.", false},
	{KindGitLabToken, "GitLabToken", "A GitLab personal access token (glpat-…).",
		"Revoke the token in GitLab's access token settings and remove it.", false},
	{KindAzureClientSecret, "AzureClientSecret", "A Microsoft Entra ID (Azure AD) client secret (…Q~…).",
		"Delete the secret from the app registration's Certificates & secrets and remove it; prefer workload identity federation.", false},
	{KindJWT, "JWT", "A JSON Web Token whose header names an alg.",
		"Remove it; if it has not expired, revoke what issued it or wait for its expiry.", true},
	// Last, so that the rule indexes of earlier SARIF reports stay.
	{KindBerthSession, "BerthSession", "A berth browser session cookie (brs_…), confirmed by its checksum: it signs its holder in to the console as the person.",
		"Remove it (a saved HAR file or a pasted Cookie header); the person signs out in that browser, which ends the session, or it ends at its expiry.", true},
}

// RuleFor returns the Rule of k and its index in Rules, or -1.
func RuleFor(k Kind) (Rule, int) {
	for i, r := range Rules {
		if r.Kind == k {
			return r, i
		}
	}
	return Rule{}, -1
}
