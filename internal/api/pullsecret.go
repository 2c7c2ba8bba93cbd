package api

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// PullSecretRequest is the body of POST /api/v1/pull-secrets: a Kubernetes
// image pull secret, for clusters whose kubelet cannot use berth as its
// credential provider.
type PullSecretRequest struct {
	// Name and Namespace name the Secret; without Namespace the manifest
	// goes to kubectl's current namespace.
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Connection or Principal, exactly one: whose client secret the pull
	// secret holds (a connection's principal).
	Connection string `json:"connection,omitempty"`
	Principal  string `json:"principal,omitempty"`
	// ExpiresIn is the secret's lifetime, as for AddSecretRequest.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Registry is the host[:port] that pods name images by; the registry's
	// public host when empty.
	Registry string `json:"registry,omitempty"`
}

// PullSecret is the answer of POST /api/v1/pull-secrets: the client secret
// made for it (its value only in the manifest) and the Secret manifest.
type PullSecret struct {
	Secret     Secret           `json:"secret"`
	ClientID   string           `json:"client_id"`
	Connection string           `json:"connection,omitempty"`
	Registry   string           `json:"registry"`
	Manifest   KubernetesSecret `json:"manifest"`
}

// KubernetesSecret is a core/v1 Secret manifest, as kubectl apply reads it in
// JSON or YAML.
type KubernetesSecret struct {
	APIVersion string             `json:"apiVersion" yaml:"apiVersion"`
	Kind       string             `json:"kind" yaml:"kind"`
	Metadata   KubernetesMetadata `json:"metadata" yaml:"metadata"`
	Type       string             `json:"type" yaml:"type"`
	Data       map[string]string  `json:"data" yaml:"data"`
}

// KubernetesMetadata is the metadata of a KubernetesSecret.
type KubernetesMetadata struct {
	Name        string            `json:"name" yaml:"name"`
	Namespace   string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// Annotations of a pull secret's manifest: when its credential expires and
// which it is, so that whoever finds the Secret in a cluster knows when it
// stops working and what to renew.
const (
	AnnotationExpiresAt  = "berth.dev/expires-at"
	AnnotationSecretID   = "berth.dev/secret-id"
	AnnotationPrincipal  = "berth.dev/principal"
	AnnotationConnection = "berth.dev/connection"
)

// createPullSecret makes a client secret of the principal (or of the
// connection's principal) and returns it as a kubernetes.io/dockerconfigjson
// Secret for the registry. The secret is an ordinary one: berth secret list
// --expiring-within, the secret.expiring webhooks and the expiry metric see
// it, its description names the pull secret, and the manifest carries its
// expiry and id.
//
// POST /api/v1/pull-secrets → 201 with PullSecret. Needs owner on registry;
// invalid for a name that is not a Kubernetes name or without exactly one of
// connection and principal; not_found for an unknown one;
// connection_disabled or principal_disabled when the secret could not pull.
func (h *handler) createPullSecret(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "creating a pull secret"); err != nil {
		return err
	}
	var req PullSecretRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	registry := req.Registry
	if registry == "" {
		registry = r.Host
		if u, err := url.Parse(h.cfg.Provider.URL); err == nil && u.Host != "" {
			registry = u.Host
		}
	}
	var p berth.Principal
	var err error
	if req.Connection != "" {
		noteConnection(r, req.Connection)
		conn, err := h.connectionByName(ctx, req.Connection)
		if err != nil {
			return err
		}
		if conn.Disabled {
			return berth.Errorf(berth.CodeConnectionDisabled, "service connection %s is disabled; a pull secret through it would not pull", conn.Name).
				WithHint("berth connection enable %s", conn.Name).WithDetail("connection", conn.Name)
		}
		if p, err = h.cfg.Store.FindPrincipalByID(ctx, conn.PrincipalID); err != nil {
			return err
		}
	} else if p, err = h.principalByName(ctx, req.Principal); err != nil {
		return err
	}
	if err := refuseAnonymousSecret(p); err != nil {
		return err
	}
	if p.Disabled {
		return berth.Errorf(berth.CodePrincipalDisabled, "principal %s is disabled; a pull secret of it would not pull", p.Name).
			WithHint("berth principal enable %s", p.Name)
	}
	where := req.Name
	if req.Namespace != "" {
		where = req.Namespace + "/" + req.Name
	}
	description := "Kubernetes pull secret " + where
	if req.Connection != "" {
		description += " (connection " + req.Connection + ")"
	}
	s, ns, err := h.createSecret(ctx, c, p, req.ExpiresIn, description)
	if err != nil {
		return err
	}
	out := PullSecret{Secret: secretView(p, s, h.cfg.Now()), ClientID: p.ClientID, Connection: req.Connection, Registry: registry,
		Manifest: pullSecretManifest(req, registry, p, s, ns.Value)}
	h.changed(r, c, "pull secret created", slog.String("principal", p.Name), slog.String("secret_id", s.ID),
		slog.String("hint", s.Hint), slog.Time("expires_at", s.Expires), slog.String("pull_secret", where))
	return writeJSON(w, http.StatusCreated, out)
}

// validate checks what the request names, before anything is looked up.
func (req PullSecretRequest) validate() error {
	const usage = "berth pull-secret NAME (--connection C | --principal P) [--namespace NS] [--expires-in 90d]"
	switch {
	case !berth.ValidKubernetesName(req.Name, true):
		return berth.Errorf(berth.CodeInvalid, "the pull secret's name %q is not a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", berth.Truncate(req.Name, 64)).
			WithHint("%s, such as berth pull-secret berth-pull --principal P", usage)
	case req.Namespace != "" && !berth.ValidKubernetesName(req.Namespace, false):
		return berth.Errorf(berth.CodeInvalid, "the namespace %q is not a Kubernetes namespace name: lower-case letters, digits and '-', at most 63", berth.Truncate(req.Namespace, 64)).
			WithHint("%s", usage)
	case (req.Connection == "") == (req.Principal == ""):
		return berth.Errorf(berth.CodeInvalid, "a pull secret holds the credential of a connection or of a principal: give exactly one of them").
			WithHint("%s", usage)
	case req.Registry != "" && !validRegistryHost(req.Registry):
		return berth.Errorf(berth.CodeInvalid, "the registry %q is not a host[:port], as pods name images by", berth.Truncate(req.Registry, 64)).
			WithHint("--registry registry.example.com")
	}
	return nil
}

// validRegistryHost reports whether s is a host[:port] with nothing else.
func validRegistryHost(s string) bool {
	u, err := url.Parse("//" + s)
	return err == nil && u.Host == s && u.Hostname() != "" && !strings.ContainsAny(s, "@/?# ")
}

// pullSecretManifest is the Secret of req: a .dockerconfigjson whose auths
// entry for registry holds the principal's client id and the secret's value
// (https://kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets).
func pullSecretManifest(req PullSecretRequest, registry string, p berth.Principal, s berth.Secret, value string) KubernetesSecret {
	type auth struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	cfg, _ := json.Marshal(map[string]map[string]auth{"auths": {registry: {
		Username: p.ClientID, Password: value,
		Auth: base64.StdEncoding.EncodeToString([]byte(p.ClientID + ":" + value)),
	}}})
	annotations := map[string]string{
		AnnotationExpiresAt: s.Expires.UTC().Format(time.RFC3339),
		AnnotationSecretID:  s.ID,
		AnnotationPrincipal: p.Name,
	}
	if req.Connection != "" {
		annotations[AnnotationConnection] = req.Connection
	}
	return KubernetesSecret{
		APIVersion: "v1", Kind: "Secret", Type: "kubernetes.io/dockerconfigjson",
		Metadata: KubernetesMetadata{Name: req.Name, Namespace: req.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "berth"}, Annotations: annotations},
		Data: map[string]string{".dockerconfigjson": base64.StdEncoding.EncodeToString(cfg)},
	}
}
