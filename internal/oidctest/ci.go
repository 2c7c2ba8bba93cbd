package oidctest

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GitHubJob describes a GitHub Actions job; the zero value of a field takes
// the default named in its comment.
type GitHubJob struct {
	Repository  string // OWNER/REPO; "org/app"
	Ref         string // "refs/heads/main"
	Environment string // when set, sub names the environment instead of the ref
	EventName   string // "push"; "pull_request" makes sub …:pull_request
	Workflow    string // "build"
	RunID       int    // 4242
	RunAttempt  int    // 1
	Actor       string // "octocat"
	Audience    string // the aud the job requested; none when ""
}

// GitHub mints a token with the claims GitHub Actions puts in a job's ID
// token
// (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#understanding-the-oidc-token).
// Numbers are strings there, as GitHub writes them.
func (i *Issuer) GitHub(j GitHubJob, opts ...Option) string {
	def(&j.Repository, "org/app")
	def(&j.Ref, "refs/heads/main")
	def(&j.EventName, "push")
	def(&j.Workflow, "build")
	def(&j.Actor, "octocat")
	if j.RunID == 0 {
		j.RunID = 4242
	}
	if j.RunAttempt == 0 {
		j.RunAttempt = 1
	}
	owner, _, _ := strings.Cut(j.Repository, "/")
	sub := "repo:" + j.Repository + ":ref:" + j.Ref
	switch {
	case j.Environment != "":
		sub = "repo:" + j.Repository + ":environment:" + j.Environment
	case j.EventName == "pull_request":
		sub = "repo:" + j.Repository + ":pull_request"
	}
	refType := "branch"
	if strings.HasPrefix(j.Ref, "refs/tags/") {
		refType = "tag"
	}
	c := map[string]any{
		"sub":                   sub,
		"ref":                   j.Ref,
		"ref_type":              refType,
		"sha":                   "d6f0e7c4b1a2938475665a4b3c2d1e0f9a8b7c6d",
		"repository":            j.Repository,
		"repository_id":         "74",
		"repository_owner":      owner,
		"repository_owner_id":   "65",
		"repository_visibility": "private",
		"run_id":                strconv.Itoa(j.RunID),
		"run_number":            "10",
		"run_attempt":           strconv.Itoa(j.RunAttempt),
		"runner_environment":    "github-hosted",
		"actor":                 j.Actor,
		"actor_id":              "12",
		"workflow":              j.Workflow,
		"workflow_ref":          j.Repository + "/.github/workflows/" + j.Workflow + ".yml@" + j.Ref,
		"workflow_sha":          "d6f0e7c4b1a2938475665a4b3c2d1e0f9a8b7c6d",
		"job_workflow_ref":      j.Repository + "/.github/workflows/" + j.Workflow + ".yml@" + j.Ref,
		"job_workflow_sha":      "d6f0e7c4b1a2938475665a4b3c2d1e0f9a8b7c6d",
		"event_name":            j.EventName,
		"head_ref":              "",
		"base_ref":              "",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
	}
	return i.Mint(c, withDefaultAudience(j.Audience, opts)...)
}

// GitLabJob describes a GitLab CI job.
type GitLabJob struct {
	Project      string // GROUP/PROJECT; "group/app"
	Ref          string // "main"
	RefType      string // "branch"
	RefProtected bool
	Environment  string
	PipelineID   int    // 574
	JobID        int    // 302
	User         string // "sample-user"
	Audience     string // the aud of the id_tokens: entry; none when ""
}

// GitLab mints a token with the claims of a GitLab CI id_tokens: token
// (https://docs.gitlab.com/ci/secrets/id_token_authentication/#token-payload).
func (i *Issuer) GitLab(j GitLabJob, opts ...Option) string {
	def(&j.Project, "group/app")
	def(&j.Ref, "main")
	def(&j.RefType, "branch")
	def(&j.User, "sample-user")
	if j.PipelineID == 0 {
		j.PipelineID = 574
	}
	if j.JobID == 0 {
		j.JobID = 302
	}
	ns := j.Project[:max(strings.LastIndex(j.Project, "/"), 0)]
	refPath := "refs/heads/" + j.Ref
	if j.RefType == "tag" {
		refPath = "refs/tags/" + j.Ref
	}
	c := map[string]any{
		"sub":                "project_path:" + j.Project + ":ref_type:" + j.RefType + ":ref:" + j.Ref,
		"namespace_id":       "72",
		"namespace_path":     ns,
		"project_id":         "20",
		"project_path":       j.Project,
		"user_id":            "1",
		"user_login":         j.User,
		"user_email":         j.User + "@example.com",
		"pipeline_id":        strconv.Itoa(j.PipelineID),
		"pipeline_source":    "push",
		"job_id":             strconv.Itoa(j.JobID),
		"ref":                j.Ref,
		"ref_type":           j.RefType,
		"ref_path":           refPath,
		"ref_protected":      strconv.FormatBool(j.RefProtected),
		"runner_id":          1,
		"runner_environment": "gitlab-hosted",
		"sha":                "714a629c0b401fdce83e847fc9589983fc6f46bc",
		"project_visibility": "private",
		"ci_config_ref_uri":  "gitlab.example.com/" + j.Project + "//.gitlab-ci.yml@" + refPath,
		"ci_config_sha":      "714a629c0b401fdce83e847fc9589983fc6f46bc",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
		c["environment_protected"] = "false"
		c["deployment_tier"] = "production"
	}
	return i.Mint(c, withDefaultAudience(j.Audience, opts)...)
}

// AzureAudience is the aud Azure Pipelines puts in the ID token of a
// workload identity federation service connection.
const AzureAudience = "api://AzureADTokenExchange"

// AzureJob describes an Azure Pipelines job using a service connection.
type AzureJob struct {
	Organization string // "contoso"
	Project      string // "web"
	Connection   string // the service connection's name; "berth"
	Audience     string // AzureAudience
}

// Azure mints a token as Azure Pipelines issues for a workload identity
// federation service connection
// (https://learn.microsoft.com/azure/devops/pipelines/release/configure-workload-identity):
// iss https://vstoken.dev.azure.com/{organization id}, which here is the
// issuer's URL, and sub sc://ORG/PROJECT/CONNECTION.
func (i *Issuer) Azure(j AzureJob, opts ...Option) string {
	def(&j.Organization, "contoso")
	def(&j.Project, "web")
	def(&j.Connection, "berth")
	def(&j.Audience, AzureAudience)
	c := map[string]any{
		"sub": "sc://" + j.Organization + "/" + j.Project + "/" + j.Connection,
	}
	return i.Mint(c, withDefaultAudience(j.Audience, opts)...)
}

// KubernetesPod describes a pod whose service-account token the API server
// mints: the token the kubelet requests for an image credential provider
// (tokenAttributes.serviceAccountTokenAudience), or a projected token volume.
type KubernetesPod struct {
	Namespace      string // "default"
	ServiceAccount string // "default"
	Pod            string // "web-0"
	Node           string // "node-1"
	// Unbound mints a token bound to no pod, as kubectl create token does:
	// without the pod and node claims.
	Unbound  bool
	Audience string // the audience asked for; none when ""
}

// Kubernetes mints a token with the claims the Kubernetes API server puts in
// a bound service-account token
// (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens):
// sub system:serviceaccount:NS:NAME, aud always an array, and the
// kubernetes.io claim with the namespace and the service account, pod and
// node names and uids (KubernetesUID). It lives an hour, as a TokenRequest
// without expirationSeconds does.
func (i *Issuer) Kubernetes(p KubernetesPod, opts ...Option) string {
	def(&p.Namespace, "default")
	def(&p.ServiceAccount, "default")
	def(&p.Pod, "web-0")
	def(&p.Node, "node-1")
	ref := func(kind, ns, name string) map[string]any {
		return map[string]any{"name": name, "uid": KubernetesUID(kind, ns, name)}
	}
	k := map[string]any{
		"namespace":      p.Namespace,
		"serviceaccount": ref("ServiceAccount", p.Namespace, p.ServiceAccount),
	}
	if !p.Unbound {
		k["pod"] = ref("Pod", p.Namespace, p.Pod)
		k["node"] = ref("Node", "", p.Node)
	}
	c := map[string]any{
		"sub":           "system:serviceaccount:" + p.Namespace + ":" + p.ServiceAccount,
		"kubernetes.io": k,
	}
	if p.Audience != "" {
		c["aud"] = []string{p.Audience}
	}
	return i.Mint(c, append([]Option{Lifetime(time.Hour)}, opts...)...)
}

// KubernetesUID is the uid the tokens of Kubernetes give the object of kind
// named ns/name: the same for the same object, as a cluster keeps it.
func KubernetesUID(kind, ns, name string) string {
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(kind+"/"+ns+"/"+name)))
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// withDefaultAudience puts WithAudience(aud) before opts, so that an option
// given by the test wins.
func withDefaultAudience(aud string, opts []Option) []Option {
	if aud == "" {
		return opts
	}
	return append([]Option{WithAudience(aud)}, opts...)
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}
