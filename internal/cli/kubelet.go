package cli

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialprovider "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/disk"
)

// The kubelet's image credential provider
// (https://kubernetes.io/docs/tasks/administer-cluster/kubelet-credential-provider/):
// the kubelet runs the provider once per image it needs credentials for,
// with a CredentialProviderRequest on stdin, and reads a
// CredentialProviderResponse from stdout. With
// tokenAttributes.serviceAccountTokenAudience in its CredentialProviderConfig
// (KEP-4412, on by default since Kubernetes 1.34) the request carries the
// pod's service-account token, bound to the pod, and the service account's
// annotations that the config names.
//
// berth exchanges that token at the image's registry for a login through the
// service connection the service account's berth.dev/connection annotation
// names (flow 3 of the design: RFC 7523 client assertion), and hands the
// kubelet the login's refresh token as the password of the user "<token>",
// which containerd and CRI-O redeem at the token endpoint by themselves. The
// kubelet caches it for the login's lifetime, less a margin for the pull.
const (
	// kubeletProviderName is the program name under which berth is the
	// provider (a symbolic link); the CredentialProviderConfig names it.
	kubeletProviderName = "berth-kubelet-credential-provider"
	// kubeletConnectionAnnotation is the service-account annotation naming
	// the service connection; the config must list it in
	// tokenAttributes.optionalServiceAccountAnnotationKeys (or the required
	// ones) for the kubelet to pass it.
	kubeletConnectionAnnotation = "berth.dev/connection"
	// kubeletTimeout bounds one run; the kubelet kills the provider after a
	// minute.
	kubeletTimeout = 45 * time.Second
	// kubeletPullMargin is how long before its login expires the kubelet
	// stops using a credential, so that a pull started just before finishes
	// with access tokens redeemed from it; a quarter of the login's lifetime
	// when that is shorter.
	kubeletPullMargin = 15 * time.Minute
	// kubeletNotServedCache is how long the kubelet keeps the empty answer
	// for a host the provider does not serve: that changes only with the
	// provider's arguments, which take a kubelet restart.
	kubeletNotServedCache = time.Hour
	// maxKubeletRequest bounds what is read from stdin; a request is a few
	// kilobytes.
	maxKubeletRequest = 1 << 20
)

// RunKubeletCredentialProvider runs berth as berth-kubelet-credential-provider
// (a symbolic link): the kubelet's credential provider protocol, args being
// the provider's arguments from the CredentialProviderConfig. A refusal is
// one line on stderr, "CODE: facts; fix", which the kubelet logs, and the
// exit status is 1.
func RunKubeletCredentialProvider(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, output: "text"}
	cmd := newKubeletProviderCommand(e)
	cmd.Use = kubeletProviderName
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(ctx); err != nil {
		if r, ok := errors.AsType[reported](err); ok {
			fmt.Fprintln(stderr, r.summary)
		} else {
			fmt.Fprintln(stderr, refusalLine(err))
		}
		return 1
	}
	return 0
}

// refusalLine is err as the one line the kubelet logs: "CODE: facts; fix".
func refusalLine(err error) string {
	line := string(berth.ErrorCode(err)) + ": " + err.Error()
	if be := berth.AsError(err); be != nil {
		line = string(be.Code) + ": " + be.Message
		if be.Hint != "" {
			line += "; " + be.Hint
		}
	}
	return strings.Join(strings.Fields(line), " ")
}

// kubeletProvider is one run of the provider: its arguments, and what it
// reads from the node.
type kubeletProvider struct {
	connection string   // --connection: the connection when the annotation names none
	registries []string // --registry: the hosts served; every host when empty
	tokenFile  string   // --token-file: the node's token, without a service-account token
	clientID   string   // --client-id and --secret-file: the node's client secret
	secretFile string
	cacheDir   string // --cache-dir

	getenv func(string) string
	now    func() time.Time
	http   *http.Client
}

func newKubeletProviderCommand(e *env) *cobra.Command {
	p := &kubeletProvider{getenv: e.getenv, now: time.Now}
	cmd := &cobra.Command{
		Use:   "kubelet-credential-provider",
		Short: "Be the kubelet's image credential provider: pods pull with their own service account",
		Long: `kubelet-credential-provider speaks the kubelet's credential provider protocol
(credentialprovider.kubelet.k8s.io/v1): it reads a CredentialProviderRequest on
stdin and writes a CredentialProviderResponse on stdout. Install berth on the node
as ` + kubeletProviderName + ` in the kubelet's --image-credential-provider-bin-dir
and name it in the CredentialProviderConfig (docs/kubernetes.md).

With tokenAttributes.serviceAccountTokenAudience set there, the kubelet sends the
pod's service-account token; berth exchanges it at the image's registry through
the service connection named by the service account's annotation
` + kubeletConnectionAnnotation + `: NAME (listed in optionalServiceAccountAnnotationKeys),
else by --connection, and gives the kubelet a login that lasts the connection's
session. Each token is exchanged once: the login is kept in --cache-dir (mode
0700) for the kubelet's later calls with the same token.

Without a service-account token (tokenAttributes not set, or a static pod) it
uses the node's own credential: --token-file (a projected token, exchanged
through --connection) or --client-id with --secret-file (a client secret).

The registry is the image's host, over https (plain http on loopback only); with
--registry, only the hosts named are served and others get an empty answer, as do
Docker Hub images. A refusal is one line on stderr, "CODE: facts; fix", which the
kubelet logs, and the exit status is 1. It needs no BERTH_ variable.`,
		Args: argsExactly(0, "berth kubelet-credential-provider [--connection NAME] [--registry HOST]… [--token-file F | --client-id ID --secret-file F] [--cache-dir DIR] < request.json"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.run(cmd.Context(), cmd.InOrStdin(), e.stdout); err != nil {
				return reported{summary: refusalLine(err)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.connection, "connection", "", "the service connection when the service account has no "+kubeletConnectionAnnotation+" annotation")
	f.StringArrayVar(&p.registries, "registry", nil, "a registry host[:port] (or https URL) to serve; repeatable; default: every image's host")
	f.StringVar(&p.tokenFile, "token-file", "", "without a service-account token: a file holding the node's ID token, exchanged through --connection")
	f.StringVar(&p.clientID, "client-id", "", "without a service-account token: the client id of the node's principal, with --secret-file")
	f.StringVar(&p.secretFile, "secret-file", "", "without a service-account token: a file holding a client secret of --client-id")
	f.StringVar(&p.cacheDir, "cache-dir", "", "where the logins of exchanged tokens are kept (default $XDG_CACHE_HOME/berth/kubelet, else $HOME/.cache/berth/kubelet, else /var/cache/berth/kubelet)")
	return cmd
}

// kubeletCredential is a node-side credential the provider exchanges for a
// login: a service-account or node token, or a client secret.
type kubeletCredential struct {
	token              ciToken // an ID token, or the zero value
	clientID, secret   string  // a client secret, when token is zero
	connection, source string
}

// run answers one request.
func (p *kubeletProvider) run(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, kubeletTimeout)
	defer cancel()
	if p.http == nil {
		p.http = &http.Client{Timeout: kubeletTimeout}
	}
	req, err := readKubeletRequest(stdin)
	if err != nil {
		return err
	}
	host, repo := splitImage(req.Image)
	srv, served, err := p.serves(host)
	if err != nil {
		return err
	}
	if !served {
		return writeKubeletResponse(stdout, "", "", kubeletNotServedCache)
	}
	cred, err := p.credential(req)
	if err != nil {
		return err
	}
	login, cached, err := p.login(ctx, srv, cred, false)
	if err == nil {
		err = p.checkPull(ctx, login, repo)
	}
	if cached && berth.IsCode(err, berth.CodeRefreshTokenInvalid) {
		// The registry ended the cached login (revoked, or its data reset):
		// exchange the credential again. For the same token the registry
		// refuses that (assertion_replayed) unless its data was reset: a
		// revoked login stays revoked until the kubelet's next token.
		if login, _, err = p.login(ctx, srv, cred, true); err == nil {
			err = p.checkPull(ctx, login, repo)
		}
	}
	if err != nil {
		return err
	}
	return writeKubeletResponse(stdout, host, login.RefreshToken, login.cacheDuration(p.now()))
}

// readKubeletRequest decodes the request; a request of another API version
// or kind is invalid.
func readKubeletRequest(r io.Reader) (credentialprovider.CredentialProviderRequest, error) {
	var req credentialprovider.CredentialProviderRequest
	if err := json.NewDecoder(io.LimitReader(r, maxKubeletRequest)).Decode(&req); err != nil {
		return req, berth.Errorf(berth.CodeInvalid, "stdin does not hold a CredentialProviderRequest in JSON: %v", err).
			WithHint("run berth as the kubelet's credential provider, which sends the request on stdin (docs/kubernetes.md)")
	}
	want := credentialprovider.SchemeGroupVersion.String()
	if req.APIVersion != want || req.Kind != "CredentialProviderRequest" {
		return req, berth.Errorf(berth.CodeInvalid, "the request is %s %s; berth answers %s CredentialProviderRequest", kindOrNone(req.APIVersion), kindOrNone(req.Kind), want).
			WithHint("set apiVersion: %s for %s in the kubelet's CredentialProviderConfig", want, kubeletProviderName)
	}
	if req.Image == "" {
		return req, berth.Errorf(berth.CodeInvalid, "the request names no image").
			WithHint("run berth as the kubelet's credential provider, which names the image it pulls")
	}
	return req, nil
}

func kindOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// writeKubeletResponse answers with the refresh token refresh, as the
// password of the user "<token>", for the images of host, cached by registry
// for cache; with no host, the empty answer that lets other providers serve
// the image.
func writeKubeletResponse(w io.Writer, host, refresh string, cache time.Duration) error {
	resp := credentialprovider.CredentialProviderResponse{
		TypeMeta:      metav1.TypeMeta{APIVersion: credentialprovider.SchemeGroupVersion.String(), Kind: "CredentialProviderResponse"},
		CacheKeyType:  credentialprovider.RegistryPluginCacheKeyType,
		CacheDuration: &metav1.Duration{Duration: cache},
	}
	if host != "" {
		resp.Auth = map[string]credentialprovider.AuthConfig{host: {Username: berth.IdentityTokenUser, Password: refresh}}
	}
	return json.NewEncoder(w).Encode(resp)
}

// splitImage returns the registry host of an image reference as the kubelet
// passes it, and its repository without tag or digest; host is "" for an image
// of Docker Hub, whose reference names no host.
func splitImage(image string) (host, repo string) {
	first, rest, ok := strings.Cut(image, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "", ""
	}
	repo, _, _ = strings.Cut(rest, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return first, repo
}

// serves returns the registry at host and whether the provider serves it:
// every host, or with --registry the hosts named.
func (p *kubeletProvider) serves(host string) (registryAddr, bool, error) {
	if host == "" {
		return registryAddr{}, false, nil
	}
	if len(p.registries) == 0 {
		srv, err := parseServer(host)
		return srv, err == nil, err
	}
	for _, r := range p.registries {
		srv, err := parseServer(r)
		if err != nil {
			return registryAddr{}, false, err
		}
		if srv.host == strings.ToLower(host) {
			return srv, true, nil
		}
	}
	return registryAddr{}, false, nil
}

// credential returns what the provider logs in with: the pod's service-account
// token, else the node's token file, else the node's client secret, with the
// service connection for a token.
func (p *kubeletProvider) credential(req credentialprovider.CredentialProviderRequest) (kubeletCredential, error) {
	var c kubeletCredential
	switch {
	case req.ServiceAccountToken != "":
		t, err := parseCIToken(req.ServiceAccountToken, "the kubelet")
		if err != nil {
			return c, err
		}
		t.source = kubeletTokenSource(t)
		c.token, c.source = t, t.source
	case p.tokenFile != "":
		f := &idTokenFinder{getenv: p.getenv}
		t, err := f.fromFile(p.tokenFile, "--token-file "+p.tokenFile)
		if err != nil {
			return c, err
		}
		c.token, c.source = t, t.source
	case p.clientID != "" && p.secretFile != "":
		b, err := os.ReadFile(p.secretFile)
		if err != nil {
			return c, berth.Errorf(berth.CodeCredentialsMissing, "cannot read --secret-file %s: %v", p.secretFile, errors.Unwrap(err)).
				WithHint("write a client secret of %s to %s (berth secret add PRINCIPAL), readable by the kubelet", p.clientID, p.secretFile)
		}
		c.clientID, c.secret, c.source = p.clientID, strings.TrimSpace(string(b)), "--secret-file "+p.secretFile
		return c, nil
	case p.clientID != "" || p.secretFile != "":
		return c, berth.Errorf(berth.CodeInvalid, "--client-id and --secret-file go together").
			WithHint("give both in the provider's args: --client-id CLIENT_ID --secret-file /etc/berth/node-secret")
	default:
		return c, berth.Errorf(berth.CodeCredentialsMissing, "the kubelet sent no service-account token for %s, and the provider has no node credential", req.Image).
			WithHint("set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig (docs/kubernetes.md), or give the provider --token-file F --connection NAME or --client-id ID --secret-file F")
	}
	c.connection = req.ServiceAccountAnnotations[kubeletConnectionAnnotation]
	if c.connection == "" {
		c.connection = p.connection
	}
	if c.connection == "" {
		return c, berth.Errorf(berth.CodeConnectionUnknown, "%s names no service connection: the service account has no %s annotation, and the provider no --connection", c.source, kubeletConnectionAnnotation).
			WithHint("kubectl annotate serviceaccount%s %s=NAME (with %s in tokenAttributes.optionalServiceAccountAnnotationKeys), or give the provider --connection NAME",
				serviceAccountArgs(c.token.subject), kubeletConnectionAnnotation, kubeletConnectionAnnotation)
	}
	if err := berth.ValidateConnectionName(c.connection); err != nil {
		return c, berth.Errorf(berth.CodeConnectionUnknown, "%s names the service connection %.64q, which is not a connection name", c.source, c.connection).
			WithHint("kubectl annotate --overwrite serviceaccount%s %s=NAME, with NAME from berth connection list", serviceAccountArgs(c.token.subject), kubeletConnectionAnnotation)
	}
	return c, nil
}

// serviceAccountOf returns the namespace and name in a service-account
// token's subject, system:serviceaccount:NS:NAME.
func serviceAccountOf(subject string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(subject, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	return ns, name, ok && ns != "" && name != ""
}

// serviceAccountArgs is " -n NS NAME" for kubectl, or " NAME" placeholders.
func serviceAccountArgs(subject string) string {
	if ns, name, ok := serviceAccountOf(subject); ok {
		return " -n " + ns + " " + name
	}
	return " -n NAMESPACE SERVICEACCOUNT"
}

// kubeletTokenSource names the pod's token for messages, by its pod and
// service account, read from its claims: "the kubelet for pod NS/POD as
// service account NAME".
func kubeletTokenSource(t ciToken) string {
	ns, name, ok := serviceAccountOf(t.subject)
	if !ok {
		return "the kubelet (a token that is not a service account's)"
	}
	var c struct {
		Kubernetes struct {
			Pod struct {
				Name string `json:"name"`
			} `json:"pod"`
		} `json:"kubernetes.io"`
	}
	parts := strings.Split(t.value, ".")
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil && c.Kubernetes.Pod.Name != "" {
		return "the kubelet for pod " + ns + "/" + c.Kubernetes.Pod.Name + " as service account " + name
	}
	return "the kubelet for service account " + ns + "/" + name
}

// kubeletLogin is a login the provider obtained, as its cache keeps it: what
// berth login stores (CreatedAt is when it was issued), the principal it acts
// as, and how long the cache serves it.
type kubeletLogin struct {
	storedLogin
	Principal string `json:"principal,omitempty"`
	// KeepUntil is when the cache stops serving it: when the kubelet stops
	// using it, or earlier when the token it came from expires, since the
	// kubelet never sends that token again.
	KeepUntil time.Time `json:"keep_until"`
}

// usableUntil is when the kubelet should stop using the login: a margin
// before it expires, for the pull; zero when its expiry is unknown.
func (l kubeletLogin) usableUntil() time.Time {
	if l.ExpiresAt == nil {
		return time.Time{}
	}
	return l.ExpiresAt.Add(-min(kubeletPullMargin, l.ExpiresAt.Sub(l.CreatedAt)/4))
}

// cacheDuration is how long the kubelet may keep the login from now, in
// whole seconds: 0, which the kubelet reads as "do not cache", when its expiry
// is unknown or near.
func (l kubeletLogin) cacheDuration(now time.Time) time.Duration {
	until := l.usableUntil()
	if until.IsZero() || !until.After(now) {
		return 0
	}
	return until.Sub(now).Truncate(time.Second)
}

// login returns the login of cred at srv: from the cache (cached set) when
// the same credential was exchanged before, its login is still good and fresh
// is not set, else by exchanging it. The cache entry is locked meanwhile, so
// that concurrent runs for the same token (the kubelet pulls a pod's images
// in parallel, and asks again for each image) exchange it once: a registry
// refuses a second exchange of one token as a replay (assertion_replayed).
func (p *kubeletProvider) login(ctx context.Context, srv registryAddr, cred kubeletCredential, fresh bool) (l kubeletLogin, cached bool, err error) {
	now := p.now()
	cache, cacheErr := p.openCache()
	key := kubeletCacheKey(srv.host, cred)
	if cacheErr == nil {
		unlock, err := disk.LockFile(ctx, filepath.Join(cache, key+".lock"))
		if err != nil {
			cacheErr = err
		} else {
			defer unlock()
			if l, ok := readKubeletLogin(cache, key, now); ok && !fresh {
				return l, true, nil
			}
		}
	}
	if l, err = p.exchange(ctx, srv, cred); err != nil {
		if berth.IsCode(err, berth.CodeAssertionReplayed) && cacheErr != nil {
			be := berth.AsError(err)
			be.Message += fmt.Sprintf("; the provider keeps the login of each token it exchanged, but could not use its cache: %v", cacheErr)
			be.Hint = "give the provider a --cache-dir it can write"
		}
		return l, false, err
	}
	if cacheErr == nil {
		if err := writeKubeletLogin(cache, key, l); err != nil {
			return l, false, err
		}
		pruneKubeletCache(cache, now)
	}
	return l, false, nil
}

// exchange obtains a login for cred at srv.
func (p *kubeletProvider) exchange(ctx context.Context, srv registryAddr, cred kubeletCredential) (kubeletLogin, error) {
	ch, err := discoverChallenge(ctx, p.http, srv)
	if err != nil {
		return kubeletLogin{}, err
	}
	// The credential goes only to the registry's own token endpoint.
	if ru, err := url.Parse(ch.realm); err != nil || !sameHost(ru, srv) {
		return kubeletLogin{}, berth.Errorf(berth.CodeInvalid, "%s names its token endpoint %s, which is not on %s; berth sends %s to the image's registry only", srv.url, ch.realm, srv.host, cred.source).
			WithHint("pull the image by the registry's public host, the one its url setting names")
	}
	now := p.now()
	var tok tokenAnswer
	if cred.token.value != "" {
		if tok, err = exchangeIDToken(ctx, p.http, ch, cred.connection, cred.token, nil); err != nil {
			return kubeletLogin{}, explainKubeletExchange(explainExchange(err, cred.token, cred.connection, ch.service), cred.token)
		}
	} else if tok, err = requestToken(ctx, p.http, ch, cred.clientID, cred.secret, true, nil); err != nil {
		// The fix for a secret refused is on the node: a new secret in the
		// file, not a workstation's berth login.
		if e := berth.AsError(err); e != nil && (e.Code == berth.CodeSecretRevoked || e.Code == berth.CodeSecretExpired || e.Code == berth.CodeSecretInvalid) {
			e.Hint = fmt.Sprintf("an owner makes a new secret (berth secret add PRINCIPAL --expires-in 90d, for the principal of client id %s) and writes it to %s on every node; the next image pull uses it", p.clientID, p.secretFile)
		}
		return kubeletLogin{}, err
	}
	if tok.RefreshToken == "" {
		return kubeletLogin{}, berth.Errorf(berth.CodeInvalid, "%s issued no refresh token; it may not be a berth registry", srv.url)
	}
	c := readAccessClaims(tok.access())
	l := kubeletLogin{Principal: c.Name, storedLogin: storedLogin{
		URL: srv.url, ClientID: c.ClientID, RefreshToken: tok.RefreshToken, ExpiresAt: tok.refreshExpiry(now),
		CreatedAt: now.UTC().Truncate(time.Second), TokenURL: ch.realm, Service: ch.service,
		Connection: c.Connection, Pipeline: c.Pipeline,
	}}
	l.KeepUntil = l.usableUntil()
	if exp := cred.token.expires; !exp.IsZero() && (l.KeepUntil.IsZero() || exp.Before(l.KeepUntil)) {
		l.KeepUntil = exp
	}
	return l, nil
}

// explainKubeletExchange gives the fixes of a refused service-account token
// in Kubernetes' terms: the pipeline preset for the service account, and the
// audience the kubelet requests the token for.
func explainKubeletExchange(err error, t ciToken) error {
	be := berth.AsError(err)
	ns, name, ok := serviceAccountOf(t.subject)
	if be == nil || !ok {
		return err
	}
	switch be.Code {
	case berth.CodePipelineUnknown:
		be.Hint = fmt.Sprintf("register the service account: berth pipeline create NAME --kubernetes %s/%s --issuer %s (or --kubernetes-namespace %s), then berth connection authorize CONNECTION --pipeline NAME",
			ns, name, berth.ShellQuote(t.issuer), ns)
	case berth.CodeAssertionExpired:
		be.Hint = "the kubelet asks the API server for a fresh token before its old one expires: synchronise the clocks of the node, the API server and the registry (NTP)"
	case berth.CodeAudienceMismatch:
		if want, _ := be.Detail["expected_audience"].(string); want != "" {
			be.Hint = fmt.Sprintf("set tokenAttributes.serviceAccountTokenAudience: %s in the kubelet's CredentialProviderConfig, or register the pipeline with --audience %s", want, strings.Join(t.audience, " "))
		}
	}
	return be
}

// sameHost reports whether u is on the registry's host and port.
func sameHost(u *url.URL, srv registryAddr) bool {
	defaultPort := map[string]string{"https": "443", "http": "80"}
	port := func(scheme, hostport string) string {
		if i := strings.LastIndexByte(hostport, ':'); i > strings.LastIndexByte(hostport, ']') {
			return strings.ToLower(hostport)
		}
		return strings.ToLower(hostport) + ":" + defaultPort[scheme]
	}
	scheme, _, _ := strings.Cut(srv.url, "://")
	return port(u.Scheme, u.Host) == port(scheme, srv.host)
}

// checkPull redeems the login for an access token that pulls repo, so that a
// login the registry no longer honours, or a principal without the role,
// is refused here, with its reason, rather than as a bare 401 in the pull.
func (p *kubeletProvider) checkPull(ctx context.Context, l kubeletLogin, repo string) error {
	var scopes []string
	if repo != "" {
		scopes = []string{"repository:" + repo + ":pull"}
	}
	_, err := refreshAccessToken(ctx, p.http, l.storedLogin, scopes)
	if be := berth.AsError(err); be != nil && l.Connection != "" {
		be.Message = fmt.Sprintf("the login through service connection %s (principal %s) cannot pull %s: %s", l.Connection, l.Principal, repo, be.Message)
	}
	return err
}

// The cache: one file per exchanged credential, named by a hash of the
// registry, the connection and the credential (never the credential
// itself), holding the login (mode 0600, in a folder of mode 0700), and a
// lock file beside it.

// defaultKubeletCacheDir is $XDG_CACHE_HOME/berth/kubelet, else
// $HOME/.cache/berth/kubelet, else /var/cache/berth/kubelet: the kubelet
// often runs without HOME.
func defaultKubeletCacheDir(getenv func(string) string) string {
	switch {
	case getenv("XDG_CACHE_HOME") != "":
		return filepath.Join(getenv("XDG_CACHE_HOME"), "berth", "kubelet")
	case getenv("HOME") != "":
		return filepath.Join(getenv("HOME"), ".cache", "berth", "kubelet")
	}
	return filepath.Join(string(filepath.Separator), "var", "cache", "berth", "kubelet")
}

// openCache creates the cache folder, readable by its owner only.
func (p *kubeletProvider) openCache() (string, error) {
	dir := p.cacheDir
	if dir == "" {
		dir = defaultKubeletCacheDir(p.getenv)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create the cache folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("restrict the cache folder: %w", err)
	}
	return dir, nil
}

func kubeletCacheKey(host string, c kubeletCredential) string {
	h := sha256.New()
	for _, s := range []string{"berth-kubelet-v1", strings.ToLower(host), c.connection, c.token.value, c.clientID, c.secret} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// readKubeletLogin returns the cached login of key while it may be served.
func readKubeletLogin(dir, key string, now time.Time) (kubeletLogin, bool) {
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return kubeletLogin{}, false
	}
	var l kubeletLogin
	if json.Unmarshal(b, &l) != nil || l.RefreshToken == "" || !now.Before(l.KeepUntil) {
		return kubeletLogin{}, false
	}
	return l, true
}

func writeKubeletLogin(dir, key string, l kubeletLogin) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode the login: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, key+".json"), b) // mode 0600
}

// pruneKubeletCache removes the logins the cache no longer serves, with their
// lock files; nobody locks those any more, since the kubelet never sends their
// credential again once it expired.
func pruneKubeletCache(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range entries {
		key, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || de.IsDir() {
			continue
		}
		if _, live := readKubeletLogin(dir, key, now); live {
			continue
		}
		for _, name := range []string{key + ".json", key + ".lock"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
	}
}
