package cli

import (
	"bytes"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/kubelet/pkg/apis/credentialprovider/install"
	credentialprovider "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// kubeletCodecs encode requests and decode responses as the kubelet does
// (pkg/credentialprovider/plugin): the credentialprovider scheme, strict.
var kubeletCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict)
}()

// kubeCluster is a running berth with a test issuer standing for a Kubernetes
// API server, and, registered by the admin: the principal puller (pull on
// team/*), the pipeline apps (--kubernetes-namespace apps), the pipeline
// ghost (--kubernetes other/ghost, permitted nowhere), and the federated
// connection cluster acting as puller, which permits apps. The node has its
// own HOME and no BERTH_ variable.
type kubeCluster struct {
	*federation
	node map[string]string
}

func startCluster(t *testing.T) *kubeCluster {
	t.Helper()
	f := startFederationWith(t, func(issuer string) [][]string {
		return [][]string{
			{"principal", "create", "puller"},
			{"role", "assign", "--principal", "puller", "--role", "pull", "--scope", "team/*"},
			{"pipeline", "create", "apps", "--kubernetes-namespace", "apps", "--issuer", issuer},
			{"pipeline", "create", "ghost", "--kubernetes", "other/ghost", "--issuer", issuer},
			{"connection", "create", "cluster", "--principal", "puller"},
			{"connection", "authorize", "cluster", "--pipeline", "apps"},
		}
	})
	return &kubeCluster{federation: f, node: map[string]string{"HOME": t.TempDir()}}
}

// podToken is the token the API server mints for the kubelet for a pod of
// namespace ns running as service account sa, for the registry's service.
func (c *kubeCluster) podToken(ns, sa string, opts ...oidctest.Option) string {
	return c.iss.Kubernetes(oidctest.KubernetesPod{Namespace: ns, ServiceAccount: sa, Pod: sa + "-7d9c", Audience: c.service}, opts...)
}

// request is what the kubelet sends for image with token and the service
// account's berth.dev/connection annotation (none when connection is "").
func request(image, token, connection string) *credentialprovider.CredentialProviderRequest {
	r := &credentialprovider.CredentialProviderRequest{Image: image, ServiceAccountToken: token}
	if connection != "" {
		r.ServiceAccountAnnotations = map[string]string{kubeletConnectionAnnotation: connection}
	}
	return r
}

// provide runs the provider as the kubelet does: the request encoded by the
// kubelet's codec on stdin, args from the CredentialProviderConfig, and the
// node's environment; the response is decoded by the kubelet's codec.
func provide(t *testing.T, env map[string]string, req *credentialprovider.CredentialProviderRequest, args ...string) (int, *credentialprovider.CredentialProviderResponse, string) {
	t.Helper()
	info, _ := runtime.SerializerInfoForMediaType(kubeletCodecs.SupportedMediaTypes(), "application/json")
	in, err := runtime.Encode(kubeletCodecs.EncoderForVersion(info.Serializer, credentialprovider.SchemeGroupVersion), req)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := RunKubeletCredentialProvider(t.Context(), args, bytes.NewReader(in), &out, &errOut, mapEnv(env))
	if code != 0 {
		if out.Len() != 0 {
			t.Errorf("a refusal wrote %q on stdout", out.String())
		}
		return code, nil, errOut.String()
	}
	obj, gvk, err := kubeletCodecs.UniversalDecoder(credentialprovider.SchemeGroupVersion).Decode(out.Bytes(), nil, nil)
	if err != nil || gvk.Kind != "CredentialProviderResponse" || gvk.GroupVersion() != credentialprovider.SchemeGroupVersion {
		t.Fatalf("the kubelet's codec does not decode the response %s (%v): %v", out.String(), gvk, err)
	}
	return code, obj.(*credentialprovider.CredentialProviderResponse), errOut.String()
}

// wantCredential checks a response serving host for the login's lifetime,
// and returns its password.
func wantCredential(t *testing.T, resp *credentialprovider.CredentialProviderResponse, host string) string {
	t.Helper()
	if resp.CacheKeyType != credentialprovider.RegistryPluginCacheKeyType || len(resp.Auth) != 1 {
		t.Fatalf("response %+v: want one credential cached by registry", resp)
	}
	a, ok := resp.Auth[host]
	if !ok || a.Username != berth.IdentityTokenUser || !strings.HasPrefix(a.Password, berth.RefreshTokenPrefix) {
		t.Fatalf("auth %v: want %s with user %s and a refresh token", keysOf(resp.Auth), host, berth.IdentityTokenUser)
	}
	// The connection's session lasts 6 hours; the kubelet stops using it
	// 15 minutes before it ends.
	want := berth.DefaultSessionLifetime - kubeletPullMargin
	if d := resp.CacheDuration; d == nil || d.Duration > want || d.Duration < want-time.Minute {
		t.Errorf("cacheDuration %v, want about %v", d, want)
	}
	return a.Password
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// wantRefused checks a refusal: exit 1 and one line on stderr, "CODE: facts;
// fix", holding each of facts.
func wantRefused(t *testing.T, what string, code int, stderr string, reason berth.Code, facts ...string) {
	t.Helper()
	line := strings.TrimSuffix(stderr, "\n")
	if code != 1 || strings.Contains(line, "\n") || !strings.HasPrefix(line, string(reason)+": ") || !strings.Contains(line, "; ") {
		t.Errorf("%s: exit %d, stderr %q; want 1 and one line %q: facts; fix", what, code, stderr, reason)
		return
	}
	for _, f := range facts {
		if !strings.Contains(line, f) {
			t.Errorf("%s: %q does not say %q", what, line, f)
		}
	}
}

// pull pulls image with the credential, as containerd would with what the
// kubelet hands it.
func pull(image, user, password string) error {
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		return err
	}
	_, err = remote.Image(ref, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: password})))
	return err
}

// TestKubeletProviderServiceAccountToken: with no arguments and no BERTH_
// variable, the pod's token and its service account's annotation get a
// credential for the image's registry that pulls the image, cached by the
// kubelet for the session less the pull margin. The same token again, or
// concurrently for the pod's other images, gets the same login without a
// second exchange.
func TestKubeletProviderServiceAccountToken(t *testing.T) {
	c := startCluster(t)
	image := c.host + "/team/web:v1"
	img, err := random.Image(512, 1, random.WithSource(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	id, secret := c.s.admin(t)
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}

	token := c.podToken("apps", "web")
	code, resp, stderr := provide(t, c.node, request(image, token, "cluster"))
	if code != 0 {
		t.Fatalf("provider: exit %d\n%s", code, stderr)
	}
	password := wantCredential(t, resp, c.host)
	if err := pull(image, resp.Auth[c.host].Username, password); err != nil {
		t.Fatalf("pulling with the provider's credential: %v", err)
	}
	mangled := password[:len(password)-1] + "x"
	if mangled == password {
		mangled = password[:len(password)-1] + "y"
	}
	if err := pull(image, berth.IdentityTokenUser, mangled); err == nil {
		t.Fatal("a mangled credential pulled too")
	}

	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Go(func() {
			img := image
			if i%2 == 1 {
				img = c.host + "/team/sidecar@sha256:" + strings.Repeat("ab", 32)
			}
			code, resp, stderr := provide(t, c.node, request(img, token, "cluster"))
			if code != 0 {
				t.Errorf("provider again: exit %d\n%s", code, stderr)
				return
			}
			got[i] = resp.Auth[c.host].Password
		})
	}
	wg.Wait()
	for i, p := range got {
		if p != password {
			t.Errorf("call %d with the same token got another login: the token was exchanged again", i)
		}
	}
	// Another pod's token is exchanged for a login of its own.
	if _, resp, _ := provide(t, c.node, request(image, c.podToken("apps", "worker"), "cluster")); resp == nil || resp.Auth[c.host].Password == password {
		t.Error("another pod's token got the first pod's login, or none")
	}

	// The cache holds the login, readable by root only, and never the token.
	dir := defaultKubeletCacheDir(mapEnv(c.node))
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache folder %s: %v, %v", dir, fi.Mode(), err)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(entries) != 2 {
		t.Errorf("cache entries %v, want one per token", entries)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(e)
		if fi, _ := os.Stat(e); fi.Mode().Perm() != 0o600 || bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(strings.Split(token, ".")[2])) {
			t.Errorf("cache entry %s: mode %v, or it holds the service-account token", e, fi.Mode())
		}
	}

}

// replayGuard stands in front of the registry and refuses a second exchange
// of one ID token, as a registry that remembers exchanged tokens does.
func replayGuard(t *testing.T, backend string) (host string) {
	t.Helper()
	target, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the registry names its token endpoint on this host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth2/token" {
			body, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(body))
			if a := f.Get("client_assertion"); a != "" {
				mu.Lock()
				replayed := seen[a]
				seen[a] = true
				mu.Unlock()
				if replayed {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					w.Write([]byte(`{"error":"invalid_client","error_description":"the ID token was exchanged before","reason":"assertion_replayed","hint":"request a new ID token"}`))
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestKubeletProviderReplayProtection: against a registry that refuses a
// second exchange of one token, the kubelet's repeated and concurrent calls
// with one token all succeed, since the provider exchanges each token once;
// without a cache it cannot, and says why.
func TestKubeletProviderReplayProtection(t *testing.T) {
	c := startCluster(t)
	host := replayGuard(t, c.s.url)
	token := c.podToken("apps", "web")
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			code, resp, stderr := provide(t, c.node, request(host+"/team/app"+string(rune('a'+i)), token, "cluster"))
			if code != 0 {
				t.Errorf("call %d: exit %d\n%s", i, code, stderr)
				return
			}
			wantCredential(t, resp, host)
		})
	}
	wg.Wait()

	noCache := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(noCache, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := c.podToken("apps", "api")
	if code, _, stderr := provide(t, c.node, request(host+"/team/api", other, "cluster"), "--cache-dir", noCache); code != 0 {
		t.Fatalf("first call without a cache: exit %d\n%s", code, stderr)
	}
	code, _, stderr := provide(t, c.node, request(host+"/team/api", other, "cluster"), "--cache-dir", noCache)
	wantRefused(t, "second call without a cache", code, stderr, berth.CodeAssertionReplayed, "could not use its cache", "--cache-dir")
}

// TestKubeletProviderCachedLoginEnded: a cached login the registry no longer
// knows (its data reset, or the token revoked) is dropped. The same
// service-account token cannot start another login (assertion_replayed: a
// revoked login must not come back by replaying the token that started it);
// the kubelet's next token does.
func TestKubeletProviderCachedLoginEnded(t *testing.T) {
	c := startCluster(t)
	image := c.host + "/team/web:v1"
	token := c.podToken("apps", "web")
	_, resp, stderr := provide(t, c.node, request(image, token, "cluster"))
	if resp == nil {
		t.Fatal(stderr)
	}
	first := wantCredential(t, resp, c.host)
	entries, _ := filepath.Glob(filepath.Join(defaultKubeletCacheDir(mapEnv(c.node)), "*.json"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v", entries)
	}
	b, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := berth.NewRefreshTokenValue(rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entries[0], bytes.ReplaceAll(b, []byte(first), []byte(unknown.Reveal())), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := provide(t, c.node, request(image, token, "cluster"))
	wantRefused(t, "the same token after its login ended", code, stderr, berth.CodeAssertionReplayed)
	code, resp, stderr = provide(t, c.node, request(image, c.podToken("apps", "web"), "cluster"))
	if code != 0 {
		t.Fatalf("provider with the kubelet's next token after the cached login ended: exit %d\n%s", code, stderr)
	}
	if again := wantCredential(t, resp, c.host); again == first || again == unknown.Reveal() {
		t.Error("the provider answered with the ended login instead of a new one")
	}
}

// TestKubeletProviderRefusals: each refusal is one line with its reason code,
// the facts and the fix, and exit status 1.
func TestKubeletProviderRefusals(t *testing.T) {
	c := startCluster(t)
	image := c.host + "/team/web:v1"
	tests := []struct {
		name   string
		req    *credentialprovider.CredentialProviderRequest
		args   []string
		reason berth.Code
		facts  []string
	}{
		{"unknown connection", request(image, c.podToken("apps", "web"), "nope"), nil,
			berth.CodeConnectionUnknown, []string{`"nope"`, "pod apps/web-7d9c as service account web", "berth connection list"}},
		{"service account not permitted", request(image, c.podToken("other", "ghost"), "cluster"), nil,
			berth.CodePipelineNotAuthorized, []string{"ghost", "berth connection permit cluster --pipeline ghost"}},
		{"expired token", request(image, c.podToken("apps", "web", oidctest.Expired(2*time.Hour)), "cluster"), nil,
			berth.CodeAssertionExpired, []string{"expired"}},
		{"service account not registered", request(image, c.podToken("stranger", "web"), "cluster"), nil,
			berth.CodePipelineUnknown, []string{"berth pipeline create NAME --kubernetes stranger/web --issuer"}},
		{"token for another audience", request(image, c.iss.Kubernetes(oidctest.KubernetesPod{Namespace: "apps", Audience: "kubernetes.default.svc"}), "cluster"), nil,
			berth.CodeAudienceMismatch, []string{"tokenAttributes.serviceAccountTokenAudience: " + c.service}},
		{"no connection named", request(image, c.podToken("apps", "web"), ""), nil,
			berth.CodeConnectionUnknown, []string{kubeletConnectionAnnotation, "kubectl annotate serviceaccount -n apps web"}},
		{"not a connection name", request(image, c.podToken("apps", "web"), "a b"), nil,
			berth.CodeConnectionUnknown, []string{`"a b"`}},
		{"role missing", request(c.host+"/other/app:v1", c.podToken("apps", "web"), "cluster"), nil,
			berth.CodeRoleMissing, []string{"service connection cluster", "other/app", "berth role assign"}},
		{"no token, no node credential", request(image, "", ""), nil,
			berth.CodeCredentialsMissing, []string{image, "serviceAccountTokenAudience"}},
		{"half a node credential", request(image, "", ""), []string{"--client-id", "x"},
			berth.CodeInvalid, []string{"--secret-file"}},
		{"not a JWT", request(image, "not-a-token", "cluster"), nil,
			berth.CodeAssertionInvalid, []string{"the kubelet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := provide(t, c.node, tt.req, tt.args...)
			wantRefused(t, tt.name, code, stderr, tt.reason, tt.facts...)
		})
	}

	t.Run("another API version", func(t *testing.T) {
		var out, errOut bytes.Buffer
		in := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderRequest","image":"` + image + `"}`
		code := RunKubeletCredentialProvider(t.Context(), nil, strings.NewReader(in), &out, &errOut, mapEnv(c.node))
		wantRefused(t, "v1alpha1", code, errOut.String(), berth.CodeInvalid, "apiVersion: credentialprovider.kubelet.k8s.io/v1")
	})
}

// TestKubeletProviderHostsNotServed: images of Docker Hub, and with
// --registry of hosts not named, get the empty answer, which lets the
// kubelet's other providers serve them; a registry named is served.
func TestKubeletProviderHostsNotServed(t *testing.T) {
	c := startCluster(t)
	token := c.podToken("apps", "web")
	for _, tt := range []struct {
		image string
		args  []string
	}{
		{"nginx:1.27", nil},
		{"library/nginx", nil},
		{"docker.io/library/nginx:1.27", []string{"--registry", c.host}},
		{c.host + "/team/web:v1", []string{"--registry", "registry.example.com", "--registry", "https://mirror.example.com"}},
	} {
		code, resp, stderr := provide(t, c.node, request(tt.image, token, "cluster"), tt.args...)
		if code != 0 || len(resp.Auth) != 0 || resp.CacheKeyType != credentialprovider.RegistryPluginCacheKeyType || resp.CacheDuration == nil {
			t.Errorf("%s %v: exit %d, %+v, %s; want the empty answer", tt.image, tt.args, code, resp, stderr)
		}
	}
	code, resp, stderr := provide(t, c.node, request(c.host+"/team/web:v1", token, "cluster"), "--registry", "registry.example.com", "--registry", "http://"+c.host)
	if code != 0 {
		t.Fatalf("a registry named: exit %d\n%s", code, stderr)
	}
	wantCredential(t, resp, c.host)
	if code, _, stderr := provide(t, c.node, request(c.host+"/team/web:v1", token, "cluster"), "--registry", "http://registry.example.com"); code != 1 || !strings.Contains(stderr, "invalid: ") {
		t.Errorf("--registry with plain http off loopback: exit %d, %s", code, stderr)
	}
}

// TestKubeletProviderNodeCredentials: without a service-account token the
// provider logs in with the node's token file through --connection, or with
// the node's client secret.
func TestKubeletProviderNodeCredentials(t *testing.T) {
	c := startCluster(t)
	image := c.host + "/team/web:v1"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(c.iss.Kubernetes(oidctest.KubernetesPod{Namespace: "apps", ServiceAccount: "node-puller", Unbound: true, Audience: c.service})), 0o600); err != nil {
		t.Fatal(err)
	}
	code, resp, stderr := provide(t, c.node, request(image, "", ""), "--token-file", tokenFile, "--connection", "cluster")
	if code != 0 {
		t.Fatalf("--token-file: exit %d\n%s", code, stderr)
	}
	wantCredential(t, resp, c.host)

	code, _, stderr = provide(t, c.node, request(image, "", ""), "--token-file", tokenFile)
	wantRefused(t, "--token-file without --connection", code, stderr, berth.CodeConnectionUnknown, "--connection")

	id := strings.TrimSpace(c.cli(t, "principal", "show", "puller", "-o", "json"))
	clientID := decodeJSON[map[string]any](t, id)["client_id"].(string)
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(c.cli(t, "secret", "add", "puller", "--expires-in", "2h")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, resp, stderr = provide(t, c.node, request(image, "", ""), "--client-id", clientID, "--secret-file", secretFile)
	if code != 0 || resp.Auth[c.host].Username != berth.IdentityTokenUser {
		t.Fatalf("--secret-file: exit %d, %+v\n%s", code, resp, stderr)
	}
	// The login of a secret lives as long as the secret: 2 h, less the margin.
	if d := resp.CacheDuration.Duration; d > 2*time.Hour-kubeletPullMargin || d < 2*time.Hour-kubeletPullMargin-time.Minute {
		t.Errorf("cacheDuration %v for a login of a 2-hour secret", d)
	}
	if status, body := redeem(t, c.s, resp.Auth[c.host].Password); status != http.StatusOK {
		t.Errorf("redeeming the node's login: %d %v", status, body)
	}
	// A secret refused: the fix is a new secret in the node's file, not a
	// workstation's berth login.
	wrongFile := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongFile, []byte("brt_wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = provide(t, c.node, request(image, "", ""), "--client-id", clientID, "--secret-file", wrongFile)
	wantRefused(t, "a wrong secret in --secret-file", code, stderr, berth.CodeSecretInvalid, "writes it to "+wrongFile)
	if strings.Contains(stderr, "berth login") {
		t.Errorf("the node's refusal names a workstation login: %s", stderr)
	}
}
