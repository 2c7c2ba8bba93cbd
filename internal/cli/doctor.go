package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
)

// The checks berth doctor runs, in order. Their names are stable: scripts
// read them from -o json.
const (
	doctorCheckHost       = "host"
	doctorCheckTLS        = "tls"
	doctorCheckChallenge  = "challenge"
	doctorCheckCredential = "credential"
	doctorCheckToken      = "token"
	doctorCheckExpiry     = "expiry"
	doctorCheckAccess     = "access"
	doctorCheckPipeline   = "pipeline"
	doctorCheckClock      = "clock"
	// Checks of a registry that is not berth (doctor_registry.go).
	doctorCheckLogin     = "login"
	doctorCheckManifest  = "manifest"
	doctorCheckUpload    = "upload"
	doctorCheckBerthOnly = "berth-only"
)

// doctorStatus is the outcome of one check.
type doctorStatus string

const (
	doctorStatusOK   doctorStatus = "ok"
	doctorStatusWarn doctorStatus = "warn"
	doctorStatusFail doctorStatus = "fail"
	doctorStatusSkip doctorStatus = "skip" // not run, since a check it needs failed
)

var doctorSymbol = map[doctorStatus]string{doctorStatusOK: "✓", doctorStatusWarn: "⚠", doctorStatusFail: "✗", doctorStatusSkip: "-"}

// Thresholds of the checks.
const (
	// doctorExpiryWarn is berth connection verify's threshold too: the two
	// must not disagree about the same secret.
	doctorExpiryWarn = berth.SecretExpiryWarning
	doctorSkewWarn   = 30 * time.Second
	doctorSkewFail   = 5 * time.Minute
	doctorTimeout    = 10 * time.Second
	// doctorSessionWarn is the warning threshold of a service connection's
	// login, a session of hours by design.
	doctorSessionWarn = 15 * time.Minute
	// doctorRenewWarn is the warning threshold of a login's refresh token
	// that ends before its secret: berth login renews it.
	doctorRenewWarn = 7 * 24 * time.Hour
)

// doctorCheck is one line of the report: the facts in Message, the command
// that fixes it in Hint, and the server's reason code when it gave one.
type doctorCheck struct {
	Name    string       `json:"name"`
	Status  doctorStatus `json:"status"`
	Message string       `json:"message"`
	Hint    string       `json:"hint,omitempty"`
	Reason  berth.Code   `json:"reason,omitempty"`
	// Connection and Pipeline are set by the pipeline check: the service
	// connection of the login and the pipeline the server matched.
	Connection string `json:"connection,omitempty"`
	Pipeline   string `json:"pipeline,omitempty"`
	// Explain names the entry of berth's catalogue of other systems' errors
	// (berth explain ID) that a registry's refusal matched.
	Explain string `json:"explain,omitempty"`
	// ExpiresAt is when the credential or token the check read expires.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Granted and Needed are the access check's scopes of a registry that is
	// not berth: what the token grants, and what --action needs.
	Granted []string `json:"granted,omitempty"`
	Needed  []string `json:"needed,omitempty"`
}

// doctorReport is what -o json prints.
type doctorReport struct {
	// Registry is what doctor took the registry for: berth, or another
	// (registryKind).
	Registry string        `json:"registry,omitempty"`
	Checks   []doctorCheck `json:"checks"`
	OK       bool          `json:"ok"`
}

// doctorDockerConfig is the part of $DOCKER_CONFIG/config.json doctor reads.
type doctorDockerConfig struct {
	Auths       map[string]doctorDockerAuth `json:"auths"`
	CredHelpers map[string]string           `json:"credHelpers"`
	CredsStore  string                      `json:"credsStore"`
}

type doctorDockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// hasCredential reports whether the entry holds a credential; docker login
// with a credential helper leaves an empty entry, which is not one.
func (a doctorDockerAuth) hasCredential() bool {
	return a.Auth != "" || a.Password != "" || a.IdentityToken != ""
}

// basic returns the entry's user name and password.
func (a doctorDockerAuth) basic() (user, password string, ok bool) {
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", "", false
		}
		user, password, ok = strings.Cut(string(b), ":")
		return user, password, ok && password != ""
	}
	return a.Username, a.Password, a.Password != ""
}

// doctorCredential is what doctor authenticates with: a client id and
// secret, or a refresh token.
type doctorCredential struct {
	source       string // for the report: "environment", "berth login", …
	clientID     string
	secret       string
	refreshToken string
	refreshUntil time.Time // zero when unknown
	// connection, pipeline and audience are those of a login made with berth
	// login --connection (storedLogin); "" otherwise.
	connection, pipeline, audience string
}

// doctor runs the checks against one registry.
type doctor struct {
	e          *env
	now        func() time.Time
	http       *http.Client
	arg        string // HOST as given, or ""
	repository string
	action     string
	reference  string // the manifest --repository's manifest check reads

	v2Body []byte // the body of /v2/'s answer
	other  *registryDoctor

	checks []doctorCheck

	base     *url.URL // the registry's URL
	hostKey  string   // host[:port], the key of the login store and the docker config
	v2       *http.Response
	sentAt   time.Time
	realm    string
	service  string
	cred     *doctorCredential
	token    string // an access token, once obtained
	tokenErr error  // the token endpoint's refusal
	api      *client.Client
	whoami   string // the caller's principal name, once known
	logins   map[string]storedLogin
	loginErr error // the login store does not parse
	docker   doctorDockerConfig
	dockerAt string // the docker config's path
}

func newDoctorCommand(e *env) *cobra.Command {
	var repository, action, reference string
	usage := "berth doctor [HOST] [--repository R] [--action pull|push|delete] [--reference TAG]"
	cmd := &cobra.Command{
		Use:   "doctor [HOST] [--repository R] [--action pull|push|delete]",
		Short: "Check the whole chain from this machine to a registry, and say what to fix",
		Long: `Check, from the client side, every link a docker push or pull depends on,
printing one line per check with ✓, ⚠ or ✗, the facts, and the command that
fixes it:

  host        the host resolves and answers
  tls         TLS is valid, or plain http is used only on loopback
  challenge   /v2/ asks for a Bearer token, naming the realm and the service
  credential  which credential is used: the environment (BERTH_CLIENT_ID and
              BERTH_CLIENT_SECRET), the stored berth login, or the docker
              config; and whether a stale docker auths entry sits beside
              the berth credential helper
  helper      the credential helper the docker config names for HOST is
              on PATH and answers get, as docker's clients run it
  token       the token endpoint issues a token (else its reason code)
  expiry      when the credential expires, and how many days are left
  access      with --repository: you may do --action on it
  pipeline    for a login as a service connection (berth login --connection):
              the connection and the pipeline, and that the pipeline is
              permitted on it; inside the CI job, a fresh ID token is
              exchanged to test the permission as it is now
  clock       the clock of this machine agrees with the server's

A registry that is not berth (Azure Container Registry, Docker Hub, GHCR,
ECR, GitLab, Harbor, distribution) gets the checks a client can make: the
challenge (Bearer or Basic); the credential docker and podman would use (the
docker config's credHelpers, credsStore and auths, each helper run with get,
podman's auth file); the token, with a JWT's expiry and granted access beside
what --action needs; a HEAD of --repository's manifest (--reference, default
latest) and, for push, an upload started and cancelled; each refusal
explained through berth explain's catalogue; the clock. A last line names
what only berth can answer.

HOST defaults to the host of BERTH_URL, else to the only stored login. The
exit status is 1 when any check fails; -o json prints the checks as data.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return berth.Errorf(berth.CodeInvalid, "%s takes at most one argument, the registry host, and %d were given", cmd.CommandPath(), len(args)).
					WithHint("%s", usage)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch action {
			case berth.DockerActionPull, berth.DockerActionPush, berth.DockerActionDelete:
			default:
				return berth.Errorf(berth.CodeInvalid, "--action is %q; it is pull, push or delete", action).WithHint("%s", usage)
			}
			if repository != "" {
				if err := berth.ValidateRepositoryName(repository); err != nil {
					return err
				}
			} else if cmd.Flags().Changed("action") {
				return berth.Errorf(berth.CodeInvalid, "--action needs --repository, the repository to check it on").WithHint("%s", usage)
			}
			d := &doctor{
				e: e, now: time.Now, arg: strings.Join(args, ""), repository: repository, action: action, reference: reference,
				http: &http.Client{Timeout: doctorTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			}
			d.run(cmd.Context())
			return d.print()
		},
	}
	cmd.Flags().StringVar(&repository, "repository", "", "a repository to check access to, such as team/app")
	cmd.Flags().StringVar(&action, "action", berth.DockerActionPull, "the action to check on --repository: pull, push or delete")
	cmd.Flags().StringVar(&reference, "reference", "latest", "the tag or digest of --repository whose manifest a registry that is not berth is asked for")
	return cmd
}

func (d *doctor) add(name string, status doctorStatus, hint, format string, args ...any) {
	d.checks = append(d.checks, doctorCheck{Name: name, Status: status, Message: fmt.Sprintf(format, args...), Hint: hint})
}

// addErr records a failed check from err, keeping a *berth.Error's reason and
// hint.
func (d *doctor) addErr(name string, status doctorStatus, prefix string, err error) {
	c := doctorCheck{Name: name, Status: status, Message: prefix + err.Error()}
	if be := berth.AsError(err); be != nil {
		c.Message, c.Hint, c.Reason = prefix+be.Message+" ["+string(be.Code)+"]", be.Hint, be.Code
	}
	d.checks = append(d.checks, c)
}

// skip records the checks in names as not run, because of why.
func (d *doctor) skip(why string, names ...string) {
	for _, n := range names {
		d.checks = append(d.checks, doctorCheck{Name: n, Status: doctorStatusSkip, Message: "skipped: " + why})
	}
}

// run runs every check in order.
func (d *doctor) run(ctx context.Context) {
	d.loadConfig()
	later := []string{doctorCheckTLS, doctorCheckChallenge, doctorCheckCredential, doctorCheckToken, doctorCheckExpiry}
	if d.repository != "" {
		later = append(later, doctorCheckAccess)
	}
	later = append(later, doctorCheckClock)
	if !d.checkHost(ctx) {
		why := "the host does not answer"
		if d.base == nil {
			why = "there is no registry to check (see the host check)"
		}
		d.skip(why, later...)
		return
	}
	if d.v2 == nil {
		// checkHost reported the failed TLS handshake; nothing else can
		// be checked over it.
		d.skip("the TLS handshake failed", later[1:]...)
		return
	}
	d.checkTLS()
	if !d.isBerth() {
		d.runRegistry(ctx)
		return
	}
	d.checkChallenge()
	d.checkCredential()
	d.checkHelper(ctx)
	after := []string{doctorCheckExpiry}
	if d.repository != "" {
		after = append(after, doctorCheckAccess)
	}
	switch {
	case d.cred == nil:
		d.skip("no credential to check", append([]string{doctorCheckToken}, after...)...)
	case !d.checkToken(ctx):
		d.skip("no token was issued", after...)
	default:
		d.checkExpiry(ctx)
		if d.repository != "" {
			d.checkAccess(ctx)
		}
	}
	if d.cred != nil && d.cred.connection != "" {
		d.checkPipeline(ctx)
	}
	d.checkClock()
}

// print writes the report, and returns an error (exit status 1) when a check
// failed.
func (d *doctor) print() error {
	rep := doctorReport{Checks: d.checks, OK: true}
	if d.base != nil && d.v2 != nil {
		rep.Registry = "berth"
		if d.other != nil {
			rep.Registry = d.other.kind
		}
	}
	failed := 0
	for _, c := range d.checks {
		if c.Status == doctorStatusFail {
			rep.OK = false
			failed++
		}
	}
	if d.e.output == "json" {
		if err := d.e.printJSON(rep); err != nil {
			return err
		}
	} else {
		printChecklist(d.e.stdout, d.checks)
	}
	if failed > 0 {
		return reported{fmt.Sprintf("berth doctor: %d of %d checks failed", failed, len(d.checks))}
	}
	return nil
}

// printChecklist writes one line per check, its symbol (✓, ⚠, ✗), name and
// facts, with its fix on the line below: the text form of berth doctor and
// berth connection verify.
func printChecklist(w io.Writer, checks []doctorCheck) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		fmt.Fprintf(w, "%s %-*s  %s\n", doctorSymbol[c.Status], width, c.Name, c.Message)
		if c.Hint != "" {
			fmt.Fprintf(w, "  %-*s  fix: %s\n", width, "", c.Hint)
		}
	}
}

// loadConfig reads the berth login store (loginstore.go) and the docker
// config; a file that is missing is empty, a login store that does not parse
// is reported by the credential check.
func (d *doctor) loadConfig() {
	if d.logins, d.loginErr = loadLogins(d.e.getenv); d.loginErr != nil {
		d.logins = map[string]storedLogin{}
	}
	if p, err := dockerConfigPath(d.e.getenv); err == nil {
		d.dockerAt = p
		if b, err := os.ReadFile(p); err == nil {
			_ = json.Unmarshal(b, &d.docker)
		}
	}
}

// target decides the registry's URL: HOST (a URL, or a host whose login or
// BERTH_URL gives the scheme; http for loopback, https otherwise), else
// BERTH_URL, else the only stored login.
func (d *doctor) target() (*url.URL, error) {
	raw := strings.TrimSpace(d.arg)
	envURL := strings.TrimSpace(d.e.getenv(envURL))
	switch {
	case raw == "" && envURL != "":
		raw = envURL
	case raw == "":
		hosts := make([]string, 0, len(d.logins))
		for h := range d.logins {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		switch len(hosts) {
		case 0:
			return nil, berth.Errorf(berth.CodeInvalid, "no registry to check: no HOST was given, %s is not set and no berth login is stored", "BERTH_URL").
				WithHint("berth doctor HOST, or berth login HOST first")
		case 1:
			raw = d.logins[hosts[0]].URL
			if raw == "" {
				raw = hosts[0]
			}
		default:
			return nil, berth.Errorf(berth.CodeInvalid, "no HOST was given, and logins to %s are stored", joinAnd(hosts)).
				WithHint("berth doctor %s", hosts[0])
		}
	case !strings.Contains(raw, "://"):
		if l, ok := d.logins[hostKey(raw)]; ok && l.URL != "" {
			raw = l.URL
		} else if u, err := url.Parse(envURL); err == nil && u.Host == raw {
			raw = envURL
		} else if h, _, err := net.SplitHostPort(raw); (err == nil && berth.IsLoopbackHost(h)) || berth.IsLoopbackHost(raw) {
			raw = "http://" + raw
		} else {
			raw = "https://" + raw
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "%q is not a registry host or an http or https URL", raw).
			WithHint("berth doctor registry.example.com, or berth doctor http://127.0.0.1:5000")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if isDockerHub(u.Hostname()) {
		u.Host = "registry-1.docker.io" // docker.io's registry API
	}
	return u, nil
}

// checkHost resolves the host and sends GET /v2/; it reports whether the
// host answered, TLS failures included (the TLS check explains those).
func (d *doctor) checkHost(ctx context.Context) bool {
	u, err := d.target()
	if err != nil {
		d.addErr(doctorCheckHost, doctorStatusFail, "", err)
		return false
	}
	d.base, d.hostKey = u, hostKey(u.String())
	name := u.Hostname()
	addrs := []string{name}
	if net.ParseIP(name) == nil {
		rctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		addrs, err = net.DefaultResolver.LookupHost(rctx, name)
		cancel()
		if err != nil {
			d.add(doctorCheckHost, doctorStatusFail, "check the host name, or the DNS settings of this machine", "%s does not resolve: %v", name, err)
			return false
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/v2/", nil)
	if err != nil {
		d.add(doctorCheckHost, doctorStatusFail, "", "GET %s/v2/: %v", u, err)
		return false
	}
	d.sentAt = d.now()
	resp, err := d.http.Do(req)
	if err != nil {
		if doctorTLSFailure(err) {
			d.add(doctorCheckHost, doctorStatusOK, "", "%s resolves to %s and accepts connections", name, strings.Join(addrs, ", "))
			d.add(doctorCheckTLS, doctorStatusFail, fmt.Sprintf("give %s a certificate that clients trust for %s, or add its CA to this machine's trust store", name, name),
				"the TLS handshake with %s failed: %v", u.Host, errors.Unwrap(err))
			return true
		}
		d.add(doctorCheckHost, doctorStatusFail, fmt.Sprintf("check that berth serve runs at %s (berth serve --addr HOST:PORT) and that no firewall is in the way", u),
			"%s resolves to %s but does not answer: %v", name, strings.Join(addrs, ", "), errors.Unwrap(err))
		return false
	}
	d.v2Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d.v2 = resp
	where := name
	if addrs[0] != name {
		where = fmt.Sprintf("%s resolves to %s and", name, strings.Join(addrs, ", "))
	}
	d.add(doctorCheckHost, doctorStatusOK, "", "%s answers (GET /v2/: %s)", where, resp.Status)
	return true
}

// doctorTLSFailure reports whether err is a failed TLS handshake or certificate.
func doctorTLSFailure(err error) bool {
	var (
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordErr)
}

// checkTLS reports the TLS connection, or plain http, which is accepted on
// loopback only. A failed handshake was reported by doctorCheckHost.
func (d *doctor) checkTLS() {
	if d.v2 == nil {
		return
	}
	if d.base.Scheme == "http" {
		if berth.IsLoopbackHost(d.base.Hostname()) {
			d.add(doctorCheckTLS, doctorStatusOK, "", "plain http to %s, which is loopback: nothing leaves this machine", d.base.Host)
			return
		}
		d.add(doctorCheckTLS, doctorStatusFail, fmt.Sprintf("serve berth with TLS and use https://%s", d.base.Host),
			"plain http to %s, which is not loopback: credentials and tokens travel unencrypted", d.base.Host)
		return
	}
	cs := d.v2.TLS
	if cs == nil || len(cs.PeerCertificates) == 0 {
		d.add(doctorCheckTLS, doctorStatusOK, "", "https to %s", d.base.Host)
		return
	}
	cert := cs.PeerCertificates[0]
	days := doctorDaysLeft(cert.NotAfter, d.now())
	status, hint := doctorStatusOK, ""
	if cert.NotAfter.Sub(d.now()) < doctorExpiryWarn {
		status, hint = doctorStatusWarn, fmt.Sprintf("renew the certificate of %s", d.base.Hostname())
	}
	d.add(doctorCheckTLS, status, hint, "%s, certificate for %s valid until %s (%d days left)",
		tls.VersionName(cs.Version), d.base.Hostname(), formatTime(cert.NotAfter), days)
}

// checkChallenge reads the Bearer challenge of /v2/.
func (d *doctor) checkChallenge() {
	switch d.v2.StatusCode {
	case http.StatusUnauthorized:
	case http.StatusOK:
		d.add(doctorCheckChallenge, doctorStatusWarn, "", "GET /v2/ answered 200 without asking for credentials: the registry serves anonymous requests")
		return
	default:
		d.add(doctorCheckChallenge, doctorStatusFail, fmt.Sprintf("check that %s is a berth registry (the address berth serve prints)", d.base),
			"GET /v2/ answered %s, not 401 with a Bearer challenge", d.v2.Status)
		return
	}
	ch, ok := parseBearerChallenge(d.v2.Header.Values("WWW-Authenticate"))
	d.realm, d.service = ch.realm, ch.service
	if !ok || d.realm == "" || d.service == "" {
		d.add(doctorCheckChallenge, doctorStatusFail, fmt.Sprintf("check that %s is a berth registry (the address berth serve prints)", d.base),
			"GET /v2/ answered 401 with WWW-Authenticate %q, not a Bearer challenge naming realm and service", d.v2.Header.Get("WWW-Authenticate"))
		return
	}
	d.add(doctorCheckChallenge, doctorStatusOK, "", "Bearer realm=%q service=%q", d.realm, d.service)
}

// dockerEntry returns the docker config's auths entry for the host, whose key
// may also be a URL.
func (d *doctor) dockerEntry() (string, doctorDockerAuth, bool) {
	for k, a := range d.docker.Auths {
		if hostKey(k) == d.hostKey {
			return k, a, true
		}
	}
	return "", doctorDockerAuth{}, false
}

// checkCredential decides which credential doctor tests: the one the berth
// CLI uses (the environment, else the stored login), else the one docker
// uses (the berth credential helper's login, or an auths entry). It warns
// when an auths entry with a credential sits beside credHelpers[HOST].
func (d *doctor) checkCredential() {
	var facts []string
	status, hint := doctorStatusOK, ""
	login, hasLogin := d.logins[d.hostKey]
	helper := d.docker.CredHelpers[d.hostKey]
	authKey, auth, hasAuth := d.dockerEntry()
	hasAuth = hasAuth && auth.hasCredential()

	id, secret := strings.TrimSpace(d.e.getenv(envClientID)), strings.TrimSpace(d.e.getenv(envClientSecret))
	// The environment counts for this host unless BERTH_URL names another.
	envHere := true
	if base := strings.TrimSpace(d.e.getenv(envURL)); base != "" && hostKey(base) != d.hostKey {
		envHere = false
	}
	switch {
	case envHere && (id == "") != (secret == ""):
		set, unset := envClientID, envClientSecret
		if id == "" {
			set, unset = envClientSecret, envClientID
		}
		status, hint = doctorStatusFail, fmt.Sprintf("export %s as well, or unset %s to use the stored berth login", unset, set)
		facts = append(facts, fmt.Sprintf("%s is set and %s is not, so the berth CLI refuses to run", set, unset))
	case envHere && id != "":
		d.cred = &doctorCredential{source: "environment", clientID: id, secret: secret}
		facts = append(facts, fmt.Sprintf("the berth CLI uses the environment (%s=%s)", envClientID, id))
	case hasLogin && login.RefreshToken != "":
		d.cred = &doctorCredential{source: "berth login", clientID: login.ClientID, refreshToken: login.RefreshToken,
			connection: login.Connection, pipeline: login.Pipeline, audience: login.Audience}
		if login.ExpiresAt != nil {
			d.cred.refreshUntil = *login.ExpiresAt
		}
		if login.Connection != "" {
			d.cred.source = "berth login --connection"
			facts = append(facts, fmt.Sprintf("the berth CLI uses the stored berth login of %s as service connection %s (pipeline %s)", d.hostKey, login.Connection, orUnknown(login.Pipeline)))
		} else {
			facts = append(facts, fmt.Sprintf("the berth CLI uses the stored berth login of %s (client %s)", d.hostKey, login.ClientID))
		}
	}
	switch {
	case helper == "berth" && hasLogin:
		facts = append(facts, fmt.Sprintf("docker uses credential helper berth (credHelpers[%q] in %s), which serves the stored login", d.hostKey, d.dockerAt))
	case helper == "berth":
		status, hint = doctorStatusFail, "berth login "+d.hostKey
		facts = append(facts, fmt.Sprintf("docker uses credential helper berth (credHelpers[%q]), but no berth login of %s is stored", d.hostKey, d.hostKey))
	case helper != "":
		status, hint = doctorStatusWarn, "berth login "+d.hostKey
		facts = append(facts, fmt.Sprintf("docker uses credential helper %s (credHelpers[%q]), which doctor cannot check", helper, d.hostKey))
	case hasAuth:
		facts = append(facts, fmt.Sprintf("docker uses auths[%q] in %s", authKey, d.dockerAt))
		if d.cred == nil {
			user, pass, ok := auth.basic()
			switch {
			case auth.IdentityToken != "":
				d.cred = &doctorCredential{source: "docker auths", refreshToken: auth.IdentityToken}
			case ok && user == "<token>": // the credential helper protocol's identity token
				d.cred = &doctorCredential{source: "docker auths", refreshToken: pass}
			case ok:
				d.cred = &doctorCredential{source: "docker auths", clientID: user, secret: pass}
			}
		}
	case d.docker.CredsStore != "":
		facts = append(facts, fmt.Sprintf("docker uses its credential store %s, which doctor cannot check", d.docker.CredsStore))
	default:
		facts = append(facts, fmt.Sprintf("docker has no credential for %s (berth login %s gives it one)", d.hostKey, d.hostKey))
	}
	if helper != "" && hasAuth && status == doctorStatusOK {
		// Not docker logout: it calls the helper's erase, which ends the
		// berth login too. berth login removes the entry, keeping a backup.
		status, hint = doctorStatusWarn, fmt.Sprintf("berth login %s (it removes auths[%q] from %s, keeping a backup)", d.hostKey, authKey, d.dockerAt)
		facts = append(facts, fmt.Sprintf("a stale auths[%q] entry holds a credential too: docker and crane use the helper and ignore it, but tools that read auths only use the stale one", authKey))
	}
	if d.loginErr != nil && status == doctorStatusOK {
		status, hint = doctorStatusWarn, "remove the login store and run berth login "+d.hostKey+" again"
		facts = append(facts, "the berth login store cannot be read: "+d.loginErr.Error())
	}
	switch {
	case status == doctorStatusFail:
		d.add(doctorCheckCredential, status, hint, "%s", strings.Join(facts, "; "))
		return
	case d.cred == nil:
		d.add(doctorCheckCredential, doctorStatusFail, "berth login "+d.hostKey+", or export BERTH_CLIENT_ID=CLIENT_ID BERTH_CLIENT_SECRET=SECRET",
			"no credential for %s: no %s and %s, no stored berth login, no docker auths entry", d.hostKey, envClientID, envClientSecret)
		return
	}
	d.add(doctorCheckCredential, status, hint, "%s", strings.Join(facts, "; "))
}

// checkToken asks the token endpoint for a token with the credential, as
// berth login does (login.go): with Basic client credentials (Docker token
// GET), or with the refresh token (OAuth 2.0 POST). It asks only for the
// reading endpoints of the management API, which every principal is granted
// and the later checks call, so that it tests the credential alone; the
// access check tests the roles.
func (d *doctor) checkToken(ctx context.Context) bool {
	ch := challenge{realm: d.realm, service: d.service}
	if ch.realm == "" {
		ch.realm = d.base.String() + "/oauth2/token"
	}
	var tok tokenAnswer
	var err error
	if d.cred.refreshToken != "" {
		l := storedLogin{URL: d.base.String(), RefreshToken: d.cred.refreshToken, TokenURL: ch.realm, Service: ch.service}
		tok, err = refreshAccessToken(ctx, d.http, l, []string{apiReadScope})
	} else {
		tok, err = requestToken(ctx, d.http, ch, d.cred.clientID, d.cred.secret, false, []string{apiReadScope})
	}
	if err != nil {
		d.tokenErr = err
		d.addErr(doctorCheckToken, doctorStatusFail, fmt.Sprintf("the token endpoint refused the %s credential: ", d.cred.source), err)
		return false
	}
	d.token = tok.access()
	d.add(doctorCheckToken, doctorStatusOK, "", "the token endpoint issued an access token for the %s credential, valid for %s",
		d.cred.source, time.Duration(tok.ExpiresIn)*time.Second)
	return true
}

// apiClient returns a client of the registry's management API acting as the
// credential.
func (d *doctor) apiClient() *client.Client {
	if d.api == nil {
		hc := &http.Client{Timeout: doctorTimeout, Transport: bearerTransport{token: d.token, next: http.DefaultTransport}}
		d.api = client.New(d.base.String(), "", "", hc)
	}
	return d.api
}

// caller returns the principal name of the credential, which the access
// check's answer names.
func (d *doctor) caller(ctx context.Context) (string, error) {
	if d.whoami != "" {
		return d.whoami, nil
	}
	c, err := d.apiClient().CheckAccess(ctx, "", string(berth.ActionCatalogList), "")
	if err != nil {
		return "", err
	}
	d.whoami = c.Actor.Name
	return d.whoami, nil
}

// doctorCredentialID returns the credential_id claim of the access token, which
// names the secret a refresh token is bound to. The token is the server's
// own answer and is only read, not verified.
func doctorCredentialID(token string) string {
	var c struct {
		CredentialID string `json:"credential_id"`
	}
	jwtPayload(token, &c)
	return c.CredentialID
}

// checkExpiry reports when the credential expires: its secret's expiry from
// the API (a principal may list its own secrets), and a refresh token's from
// the login store, the earlier of the two counting.
func (d *doctor) checkExpiry(ctx context.Context) {
	now := d.now()
	type deadline struct {
		what string
		at   time.Time
		fix  string
	}
	var ds []deadline
	var apiErr error
	var secretFix string // what extends the credential: a new secret, never a new login
	name, err := d.caller(ctx)
	cid := doctorCredentialID(d.token)
	_, person := berth.SessionIDOf(cid)
	if err == nil && !person {
		var ss []doctorSecret
		ss, err = d.secrets(ctx, name)
		for _, s := range ss {
			mine := (cid != "" && s.ID == cid) || (cid == "" && d.cred.secret != "" && strings.HasPrefix(d.cred.secret, s.Hint))
			if mine && s.State == berth.SecretActive {
				secretFix = d.secretFix(ctx, name, s)
				ds = append(ds, deadline{fmt.Sprintf("secret %s… of %s", s.Hint, name), s.Expires, secretFix})
				break
			}
		}
	}
	if secretFix == "" && name != "" && !person {
		secretFix = d.secretFix(ctx, name, doctorSecret{})
	}
	apiErr = err
	warnAt := doctorExpiryWarn
	switch {
	case d.cred.refreshUntil.IsZero():
	case d.cred.connection != "":
		// A federated login is a session of hours: it ends with the job.
		warnAt = doctorSessionWarn
		ds = append(ds, deadline{"the session of service connection " + d.cred.connection, d.cred.refreshUntil,
			fmt.Sprintf("berth login %s --connection %s (inside the CI job)", d.hostKey, d.cred.connection)})
	case person:
		// A person's login lasts their sign-in session, hours too; they
		// hold no secret, so a new sign-in is the one fix.
		warnAt = doctorSessionWarn
		ds = append(ds, deadline{"the sign-in session of " + name, d.cred.refreshUntil,
			fmt.Sprintf("berth login %s (signs you in through the browser again)", d.hostKey)})
	case len(ds) > 0 && d.cred.refreshUntil.Before(ds[0].at.Add(-time.Hour)):
		// It ends before its secret (a refresh token lasts 30 days at
		// most): a new login renews it, and there is time for one until
		// the last week.
		warnAt = doctorRenewWarn
		ds = append(ds, deadline{"the refresh token of the stored login", d.cred.refreshUntil,
			fmt.Sprintf("berth login %s (the secret lasts until %s)", d.hostKey, formatTime(ds[0].at))})
	default:
		// The refresh token ends with the secret it came from: a new login
		// with the same secret cannot outlast it.
		fix := secretFix
		if fix == "" {
			fix = "berth secret add PRINCIPAL --expires-in 90d, then berth login " + d.hostKey + " with the new secret"
		}
		ds = append(ds, deadline{"the refresh token of the stored login", d.cred.refreshUntil, fix})
	}
	if len(ds) == 0 {
		if apiErr != nil {
			d.addErr(doctorCheckExpiry, doctorStatusWarn, "cannot read the credential's expiry: ", apiErr)
			return
		}
		d.add(doctorCheckExpiry, doctorStatusWarn, "", "the server lists no active secret of %s matching the credential", name)
		return
	}
	slices.SortFunc(ds, func(a, b deadline) int { return a.at.Compare(b.at) })
	first := ds[0]
	var parts []string
	for _, x := range ds {
		if left := doctorDaysLeft(x.at, now); x.at.After(now) && x.at.Sub(now) < 48*time.Hour {
			// A session of hours: days would round it to 0.
			parts = append(parts, fmt.Sprintf("%s expires on %s (%s left)", x.what, formatTime(x.at), x.at.Sub(now).Round(time.Minute)))
		} else if x.at.After(now) {
			parts = append(parts, fmt.Sprintf("%s expires on %s (%d days left)", x.what, formatTime(x.at), left))
		} else {
			parts = append(parts, fmt.Sprintf("%s expired on %s (%d days ago)", x.what, formatTime(x.at), -left))
		}
	}
	msg := strings.Join(parts, "; ")
	switch {
	case !first.at.After(now):
		d.add(doctorCheckExpiry, doctorStatusFail, first.fix, "%s", msg)
	case first.at.Sub(now) < warnAt:
		d.add(doctorCheckExpiry, doctorStatusWarn, first.fix, "%s", msg)
	default:
		d.add(doctorCheckExpiry, doctorStatusOK, "", "%s", msg)
	}
}

// doctorSecret is a secret as the API lists it.
type doctorSecret struct {
	ID          string
	Hint        string
	Description string
	State       berth.SecretState
	Expires     time.Time
}

func (d *doctor) secrets(ctx context.Context, principal string) ([]doctorSecret, error) {
	ss, err := d.apiClient().ListSecrets(ctx, principal)
	if err != nil {
		return nil, err
	}
	out := make([]doctorSecret, len(ss))
	for i, s := range ss {
		out[i] = doctorSecret{ID: s.ID, Hint: s.Hint, Description: s.Description, State: s.State, Expires: s.Expires}
	}
	return out, nil
}

// doctorDaysLeft is the number of days from now until t, rounded to the
// nearest, negative once past.
func doctorDaysLeft(t, now time.Time) int {
	return berth.RoundDays(t.Sub(now))
}

// checkAccess asks the server's own access check whether the caller may do
// the action on the repository.
func (d *doctor) checkAccess(ctx context.Context) {
	c, err := d.apiClient().CheckAccess(ctx, "", d.action, d.repository)
	if err != nil {
		d.addErr(doctorCheckAccess, doctorStatusFail, "the access check failed: ", err)
		return
	}
	if c.Allowed {
		by := ""
		if c.Allowing != nil {
			by = fmt.Sprintf(", by role %s on %s", c.Allowing.Role, c.Allowing.Scope)
		}
		d.add(doctorCheckAccess, doctorStatusOK, "", "%s may %s %s%s", c.Actor.Name, d.action, d.repository, by)
		return
	}
	d.checks = append(d.checks, doctorCheck{Name: doctorCheckAccess, Status: doctorStatusFail, Reason: c.Reason, Hint: c.Hint,
		Message: fmt.Sprintf("%s may not %s %s [%s]: %s", c.Actor.Name, d.action, d.repository, c.Reason, c.Message)})
}

// checkClock compares the Date header of /v2/'s answer with this machine's
// clock.
func (d *doctor) checkClock() {
	if d.v2 == nil {
		d.skip("the registry's answer is missing", doctorCheckClock)
		return
	}
	server, err := http.ParseTime(d.v2.Header.Get("Date"))
	if err != nil {
		d.add(doctorCheckClock, doctorStatusWarn, "", "the registry's answer has no valid Date header to compare clocks with")
		return
	}
	d.checks = append(d.checks, doctorClockCheck(server, d.sentAt))
}

// doctorClockCheck judges the skew between the server's Date and the local time
// the request was sent at. Date has a resolution of one second, so the skew
// is known to ±1 s.
func doctorClockCheck(server, local time.Time) doctorCheck {
	skew := server.Sub(local.Truncate(time.Second)).Round(time.Second)
	abs := skew.Abs()
	c := doctorCheck{Name: doctorCheckClock, Status: doctorStatusOK}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	c.Message = fmt.Sprintf("the server's clock is %s %s this machine's (Date: %s)", abs, dir, server.UTC().Format(time.RFC3339))
	if abs <= time.Second {
		c.Message = fmt.Sprintf("the server's clock agrees with this machine's to the second (Date: %s)", server.UTC().Format(time.RFC3339))
	}
	switch {
	case abs > doctorSkewFail:
		c.Status = doctorStatusFail
	case abs > doctorSkewWarn:
		c.Status = doctorStatusWarn
	}
	if c.Status != doctorStatusOK {
		c.Hint = "synchronize the clocks with NTP (timedatectl set-ntp true) on this machine and on the server: tokens are refused or expire early when clocks disagree"
	}
	return c
}

// checkPipeline reports, for a login as a service connection, the connection
// and the pipeline, and whether the pipeline is permitted on it. Inside the CI
// job (its ID token at hand, as berth login --connection finds it) it
// exchanges a fresh ID token, which tests the permission as it is now;
// elsewhere the refresh of the stored login tells. A refusal keeps the
// server's reason code; pipeline_not_authorized names berth connection permit.
func (d *doctor) checkPipeline(ctx context.Context) {
	conn := d.cred.connection
	ch := challenge{realm: d.realm, service: d.service}
	if ch.realm == "" {
		ch.realm = d.base.String() + "/oauth2/token"
	}
	aud := d.cred.audience
	if aud == "" {
		aud = d.service
	}
	refused := func(err error) {
		be := berth.AsError(err)
		c := doctorCheck{Name: doctorCheckPipeline, Status: doctorStatusFail, Connection: conn, Pipeline: d.cred.pipeline, Message: err.Error()}
		if be != nil {
			c.Message, c.Hint, c.Reason = be.Message+" ["+string(be.Code)+"]", be.Hint, be.Code
			if p, ok := be.Detail["pipeline"].(string); ok && p != "" {
				c.Pipeline = p
			}
			if be.Code == berth.CodePipelineNotAuthorized && c.Pipeline != "" && !strings.Contains(c.Hint, "berth connection permit") {
				c.Hint = fmt.Sprintf("berth connection permit %s --pipeline %s", conn, c.Pipeline)
			}
		}
		d.checks = append(d.checks, c)
	}
	f := &idTokenFinder{getenv: d.e.getenv, http: d.http}
	idt, findErr := f.find(ctx, "", aud)
	if findErr == nil {
		tok, err := exchangeIDToken(ctx, d.http, ch, conn, idt, nil)
		if err != nil {
			refused(explainExchange(err, idt, conn, aud))
			return
		}
		c := readAccessClaims(tok.access())
		d.checks = append(d.checks, doctorCheck{Name: doctorCheckPipeline, Status: doctorStatusOK, Connection: conn, Pipeline: c.Pipeline,
			Message: fmt.Sprintf("pipeline %s is permitted on service connection %s: %s was exchanged just now", orUnknown(c.Pipeline), conn, idt.describe())})
		return
	}
	if d.tokenErr != nil {
		switch berth.ErrorCode(d.tokenErr) {
		case berth.CodePipelineNotAuthorized, berth.CodePipelineUnknown, berth.CodeConnectionUnknown,
			berth.CodeConnectionDisabled, berth.CodeAudienceMismatch:
			refused(d.tokenErr)
		default:
			d.skip("no token was issued", doctorCheckPipeline)
		}
		return
	}
	c := readAccessClaims(d.token)
	pipeline := c.Pipeline
	if pipeline == "" {
		pipeline = d.cred.pipeline
	}
	msg := fmt.Sprintf("pipeline %s logged in through service connection %s, and the login still refreshes", orUnknown(pipeline), conn)
	if berth.ErrorCode(findErr) == berth.CodeCredentialsMissing {
		msg += "; no CI ID token is at hand here to test the permission afresh (run berth doctor inside the CI job for that)"
	} else {
		msg += "; the CI ID token could not be fetched to test the permission afresh: " + findErr.Error()
	}
	d.checks = append(d.checks, doctorCheck{Name: doctorCheckPipeline, Status: doctorStatusOK, Connection: conn, Pipeline: pipeline, Message: msg})
}

func orUnknown(s string) string {
	if s == "" {
		return "(not known)"
	}
	return s
}
