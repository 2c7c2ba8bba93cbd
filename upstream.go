package berth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pull-through cache codes: an upstream registry berth reads through failed,
// or a client tried to write into a cache namespace.
const (
	// CodeUpstreamUnreachable is an upstream that gave no usable answer: a
	// connection refused, a timeout, a 5xx.
	CodeUpstreamUnreachable Code = "upstream_unreachable"
	// CodeUpstreamAuthFailed is an upstream that refused the credential
	// berth holds for it (or, without one, anonymous access).
	CodeUpstreamAuthFailed Code = "upstream_auth_failed"
	// CodeUpstreamRateLimited is an upstream that answered 429.
	CodeUpstreamRateLimited Code = "upstream_rate_limited"
	// CodeCacheReadOnly is a push or upload into a cache namespace, whose
	// content only ever comes from its upstream.
	CodeCacheReadOnly Code = "cache_read_only"
)

// Audit actions of upstream changes. Target is the upstream's name; Detail
// holds its url and namespace, never its credential.
const (
	AuditUpstreamCreate AuditAction = "upstream.create"
	AuditUpstreamUpdate AuditAction = "upstream.update"
	AuditUpstreamDelete AuditAction = "upstream.delete"
)

// DefaultTagTTL is how long a cached tag is served before it is checked
// against the upstream again, when an upstream sets none.
const DefaultTagTTL = time.Hour

// UpstreamPassword is the credential berth presents to an upstream. Like a
// WebhookSecret, berth keeps the value, and every way of printing it
// redacts it: String, every fmt verb, MarshalJSON, MarshalText and slog's
// LogValue write "…". Reveal is the one way out: for the upstream's
// token endpoint, and for the store, which keeps it sealed.
type UpstreamPassword struct{ v *string }

// UpstreamPasswordOf wraps a value; the empty string is no password.
func UpstreamPasswordOf(value string) UpstreamPassword {
	if value == "" {
		return UpstreamPassword{}
	}
	return UpstreamPassword{v: &value}
}

// Reveal returns the value itself.
func (p UpstreamPassword) Reveal() string {
	if p.v == nil {
		return ""
	}
	return *p.v
}

// IsZero reports whether p holds no value.
func (p UpstreamPassword) IsZero() bool { return p.v == nil }

// String returns "…", or "" for the zero value.
func (p UpstreamPassword) String() string {
	if p.v == nil {
		return ""
	}
	return "…"
}

func (p UpstreamPassword) GoString() string {
	return "berth.UpstreamPassword(" + strconv.Quote(p.String()) + ")"
}

// Format redacts for every verb.
func (p UpstreamPassword) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, p.String(), p.GoString())
}

func (p UpstreamPassword) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }
func (p UpstreamPassword) MarshalText() ([]byte, error) { return []byte(p.String()), nil }
func (p UpstreamPassword) LogValue() slog.Value         { return slog.StringValue(p.String()) }

// Upstream is another registry whose content a cache namespace pulls
// through: a pull of NAMESPACE/REPO is answered from what berth holds, or
// fetched from URL's REPO, stored and served. Its credential is one more
// secret berth tracks: it may expire, and is never shown.
type Upstream struct {
	Name string `json:"name"`
	// URL is the upstream registry's base URL, such as
	// https://registry-1.docker.io: https, or http on loopback.
	URL string `json:"url"`
	// Namespace is the first path component of every repository the
	// upstream fills, such as hub in hub/library/alpine.
	Namespace string `json:"namespace"`
	// Username and Password authenticate to the upstream (Basic, or for
	// its Docker token endpoint); both empty for anonymous pulls.
	Username string           `json:"username,omitempty"`
	Password UpstreamPassword `json:"-"`
	// TagTTL is how long a cached tag is served before berth asks the
	// upstream (a HEAD) whether it moved. Digests are never re-checked.
	TagTTL time.Duration `json:"-"`
	// MaxSize bounds the bytes the cache namespace holds: past it, garbage
	// collection evicts the least recently pulled images. 0 for no bound.
	MaxSize int64 `json:"max_size,omitempty"`
	// ExpiresAt is when the credential stops working upstream, when its
	// owner knows it (a Docker Hub access token's end, say); nil for never
	// or unknown.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Created   time.Time  `json:"created_at"`
	// decodedHasPassword is has_password of a decoded upstream, which
	// holds no password itself.
	decodedHasPassword bool
}

// MarshalJSON writes the upstream with tag_ttl as a Go duration string
// ("1h0m0s") and has_password, never the password.
func (u Upstream) MarshalJSON() ([]byte, error) {
	type plain Upstream
	return json.Marshal(struct {
		plain
		TagTTL      string `json:"tag_ttl"`
		HasPassword bool   `json:"has_password"`
	}{plain(u), u.TagTTL.String(), !u.Password.IsZero() || u.decodedHasPassword})
}

// UnmarshalJSON reads what MarshalJSON writes; the password is never in
// it, so a decoded upstream holds none, and only remembers has_password.
func (u *Upstream) UnmarshalJSON(b []byte) error {
	type plain Upstream
	var v struct {
		plain
		TagTTL      string `json:"tag_ttl"`
		HasPassword bool   `json:"has_password"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*u = Upstream(v.plain)
	u.decodedHasPassword = v.HasPassword
	if v.TagTTL != "" {
		d, err := time.ParseDuration(v.TagTTL)
		if err != nil {
			return fmt.Errorf("tag_ttl: %w", err)
		}
		u.TagTTL = d
	}
	return nil
}

// NewUpstreamRequest is what an owner gives to register an upstream.
type NewUpstreamRequest struct {
	Name      string
	URL       string
	Namespace string
	Username  string
	Password  UpstreamPassword
	TagTTL    time.Duration // DefaultTagTTL when zero
	MaxSize   int64         // 0 for no bound
	ExpiresAt *time.Time
}

// NewUpstream validates req and returns the upstream created at now. It
// returns invalid for a name outside the principal name rules, a URL that is
// not https (http on loopback) or carries a path, query or user, a
// namespace that is not one repository path component, a username without
// a password or the reverse, a negative TTL, or an expiry not after now.
func NewUpstream(req NewUpstreamRequest, now time.Time) (Upstream, error) {
	if err := ValidateUpstreamName(req.Name); err != nil {
		return Upstream{}, err
	}
	base, err := normalizeUpstreamURL(req.URL)
	if err != nil {
		return Upstream{}, err
	}
	if err := ValidateCacheNamespace(req.Namespace); err != nil {
		return Upstream{}, err
	}
	if (req.Username == "") != req.Password.IsZero() {
		return Upstream{}, Errorf(CodeInvalid, "upstream %s has a username without a password, or a password without a username", req.Name).
			WithHint("give both, --username U --password-stdin, or neither for anonymous pulls")
	}
	if strings.ContainsAny(req.Username, ":\r\n") {
		return Upstream{}, Errorf(CodeInvalid, "the username of upstream %s holds ':' or a line break, which Basic authentication cannot carry", req.Name)
	}
	if req.TagTTL < 0 {
		return Upstream{}, Errorf(CodeInvalid, "tag TTL %s is negative", req.TagTTL).WithHint("give a duration such as --tag-ttl 1h")
	}
	if req.TagTTL == 0 {
		req.TagTTL = DefaultTagTTL
	}
	if req.MaxSize < 0 {
		return Upstream{}, Errorf(CodeInvalid, "max size %d is negative", req.MaxSize).WithHint("give a size such as --max-size 20GiB, or none for no bound")
	}
	if req.ExpiresAt != nil {
		if req.Password.IsZero() {
			return Upstream{}, Errorf(CodeInvalid, "upstream %s has an expiry but no credential to expire", req.Name).
				WithHint("give --expires-at only with --username and --password-stdin")
		}
		if !req.ExpiresAt.After(now) {
			return Upstream{}, Errorf(CodeInvalid, "the credential of upstream %s would expire on %s, which is not in the future", req.Name, req.ExpiresAt.UTC().Format(time.RFC3339)).
				WithHint("give the day the upstream credential stops working, such as --expires-at %s", now.AddDate(0, 3, 0).UTC().Format("2006-01-02"))
		}
		t := req.ExpiresAt.UTC()
		req.ExpiresAt = &t
	}
	return Upstream{Name: req.Name, URL: base, Namespace: req.Namespace, Username: req.Username, Password: req.Password,
		TagTTL: req.TagTTL, MaxSize: req.MaxSize, ExpiresAt: req.ExpiresAt, Created: now.UTC()}, nil
}

// UpstreamChange is what an owner changes of an upstream: what is set
// changes, the rest stays. A new credential (Username and Password, or
// Anonymous for none) replaces the recorded expiry with ExpiresAt, or with
// none; ExpiresAt alone records the kept credential's.
type UpstreamChange struct {
	URL       string
	Username  string
	Password  UpstreamPassword
	Anonymous bool
	TagTTL    time.Duration // 0: unchanged
	MaxSize   *int64        // nil: unchanged; 0 removes the bound
	ExpiresAt *time.Time
}

// NewCredential reports whether c replaces the stored credential (then the
// old one is not needed, and may be unreadable).
func (c UpstreamChange) NewCredential() bool {
	return c.Anonymous || c.Username != "" || !c.Password.IsZero()
}

// Change returns u changed by c at now, validated as NewUpstream validates,
// with u's name, namespace and creation time. It returns invalid when c both
// removes the credential and gives one, and when c moves u to another
// scheme, host or port while keeping its credential: a stored credential is
// sent to no host but the one it was given for. A kept credential keeps its
// recorded expiry even once past; only a new date must lie ahead.
func (u Upstream) Change(c UpstreamChange, now time.Time) (Upstream, error) {
	if c.Anonymous && (c.Username != "" || !c.Password.IsZero()) {
		return Upstream{}, Errorf(CodeInvalid, "an update cannot both remove the credential of upstream %s and give one", u.Name).
			WithHint("berth upstream update %s --anonymous, or berth upstream update %s --username USER --password-stdin", u.Name, u.Name)
	}
	next := NewUpstreamRequest{Name: u.Name, URL: u.URL, Namespace: u.Namespace, Username: u.Username, Password: u.Password,
		TagTTL: u.TagTTL, MaxSize: u.MaxSize, ExpiresAt: c.ExpiresAt}
	if c.URL != "" {
		next.URL = c.URL
	}
	if c.NewCredential() {
		next.Username, next.Password = c.Username, c.Password
	}
	if c.TagTTL != 0 {
		next.TagTTL = c.TagTTL
	}
	if c.MaxSize != nil {
		next.MaxSize = *c.MaxSize
	}
	changed, err := NewUpstream(next, now)
	if err != nil {
		return Upstream{}, err
	}
	if !c.NewCredential() {
		if c.ExpiresAt == nil {
			changed.ExpiresAt = u.ExpiresAt
		}
		if !u.Password.IsZero() && !sameOrigin(u.URL, changed.URL) {
			return Upstream{}, Errorf(CodeInvalid, "the credential of upstream %s was given for %s; berth sends it to no other host", u.Name, u.Host()).
				WithHint("give the new host its own credential: berth upstream update %s --url %s --username USER --password-stdin (or --anonymous)", u.Name, changed.URL)
		}
	}
	changed.Created = u.Created
	return changed, nil
}

// sameOrigin reports whether two upstream URLs name the same scheme, host
// and port.
func sameOrigin(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// ValidateUpstreamName applies the principal name rules to an upstream's name.
func ValidateUpstreamName(name string) error { return validateName("upstream", name) }

// ValidateCacheNamespace returns invalid unless ns is one repository path
// component: lower-case letters and digits, joined by '.', '_', '__' or '-'.
func ValidateCacheNamespace(ns string) error {
	if ns == "" || strings.Contains(ns, "/") || ValidateRepositoryName(ns) != nil {
		return Errorf(CodeInvalid, "cache namespace %q is not one repository path component", Truncate(ns, 80)).
			WithHint("use lower-case letters and digits such as hub; pulls then name hub/library/alpine")
	}
	return nil
}

// normalizeUpstreamURL checks s and returns it without a trailing slash.
func normalizeUpstreamURL(s string) (string, error) {
	if err := ValidateOutboundURL("upstream", s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", Errorf(CodeInvalid, "upstream URL %s must be the registry's base URL, without a path, query or user", RedactURL(s)).
			WithHint("give the scheme and host only, such as --url https://registry-1.docker.io; the credential goes to --username and --password-stdin")
	}
	host := u.Host
	if strings.EqualFold(host, "docker.io") {
		host = "registry-1.docker.io" // docker.io names Docker Hub; its registry API answers here
	}
	return u.Scheme + "://" + host, nil
}

// RedactURL returns s without the user information it may carry.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// dockerHubHosts are the names Docker Hub's registry answers on.
var dockerHubHosts = map[string]bool{"registry-1.docker.io": true, "index.docker.io": true, "docker.io": true, "registry.hub.docker.com": true}

// IsDockerHub reports whether the upstream is Docker Hub, whose official
// images live under library/.
func (u Upstream) IsDockerHub() bool {
	p, err := url.Parse(u.URL)
	return err == nil && dockerHubHosts[strings.ToLower(p.Hostname())]
}

// Host returns the upstream's host[:port], for messages.
func (u Upstream) Host() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		return u.URL
	}
	return p.Host
}

// Holds reports whether repo lies in u's cache namespace: it is
// NAMESPACE/REST, REST not empty. It is the one test of that, and
// allocates nothing: every /v2/ request asks.
func (u Upstream) Holds(repo string) bool {
	n := len(u.Namespace)
	return n > 0 && len(repo) > n+1 && repo[n] == '/' && repo[:n] == u.Namespace
}

// RemoteRepository returns the upstream's name for the local repository
// repo, which must lie in the cache namespace (NAMESPACE/REST): REST, and on
// Docker Hub library/REST when REST has one component (hub/alpine is
// library/alpine, as docker pull alpine is). ok is false outside the
// namespace.
func (u Upstream) RemoteRepository(repo string) (remote string, ok bool) {
	if !u.Holds(repo) {
		return "", false
	}
	rest := repo[len(u.Namespace)+1:]
	if u.IsDockerHub() && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return rest, true
}

// UpstreamFor returns the upstream among ups whose namespace holds repo.
func UpstreamFor(ups []Upstream, repo string) (Upstream, bool) {
	for _, u := range ups {
		if u.Holds(repo) {
			return u, true
		}
	}
	return Upstream{}, false
}

// describe names the upstream in messages: its name and host.
func (u Upstream) describe() string { return fmt.Sprintf("upstream %s (%s)", u.Name, u.Host()) }

// UpstreamUnknown is not_found for an upstream name.
func UpstreamUnknown(name string) *Error {
	return Errorf(CodeNotFound, "no upstream is named %s", name).WithHint("list the upstreams with berth upstream list")
}

// Redact returns s, what an upstream said or an error about it, without the
// upstream's stored password (an upstream may echo it, and its formats, such
// as Docker Hub's dckr_pat_ tokens, are not berth's) or any credential berth
// knows the shape of.
func (u Upstream) Redact(s string) string {
	if p := u.Password.Reveal(); len(p) >= 4 {
		s = strings.ReplaceAll(s, p, "[redacted]")
	}
	return RedactCredentials(s)
}

// UpstreamUnreachable is the refusal of a pull that needed the upstream
// while it gave no usable answer; cause says what happened (never a
// credential).
func UpstreamUnreachable(u Upstream, cause string) *Error {
	return Errorf(CodeUpstreamUnreachable, "%s did not answer usably: %s", u.describe(), u.Redact(cause)).
		WithHint("check that %s is up and reachable from berth, then berth upstream verify %s", u.URL, u.Name).
		WithDetail("upstream", u.Name)
}

// UpstreamAuthFailed is the refusal of a pull whose upstream refused the
// credential berth holds for it; said is the upstream's own message.
func UpstreamAuthFailed(u Upstream, status int, said string) *Error {
	who := "anonymous access"
	if u.Username != "" {
		who = "the stored credential of user " + u.Username
	}
	msg := fmt.Sprintf("%s refused %s (HTTP %d)", u.describe(), who, status)
	if said = strings.TrimSpace(u.Redact(said)); said != "" {
		msg += ": " + Truncate(said, 200)
	}
	e := Errorf(CodeUpstreamAuthFailed, "%s", msg).WithDetail("upstream", u.Name)
	if u.ExpiresAt != nil {
		e.Message += fmt.Sprintf("; the credential was recorded to expire on %s", u.ExpiresAt.UTC().Format("2006-01-02"))
	}
	return e.WithHint("replace the credential: berth upstream update %s --username USER --password-stdin, with --expires-at DATE if it has an end", u.Name)
}

// UpstreamRateLimited is the refusal of a pull the upstream rate-limited;
// reset, when the upstream said, is when it allows requests again.
func UpstreamRateLimited(u Upstream, said string, reset time.Time, now time.Time) *Error {
	msg := u.describe() + " is rate-limiting berth (HTTP 429)"
	if said = strings.TrimSpace(u.Redact(said)); said != "" {
		msg += ": " + Truncate(said, 200)
	}
	e := Errorf(CodeUpstreamRateLimited, "%s", msg).WithDetail("upstream", u.Name)
	if !reset.IsZero() {
		e.Message += "; it allows requests again at " + reset.UTC().Format(time.RFC3339)
		if secs := int(reset.Sub(now).Seconds() + 0.999); secs > 0 {
			e.WithDetail("retry_after", secs)
		}
	}
	hint := "wait for the reset, then pull again: images pulled once are served from the cache without asking the upstream"
	if u.Username == "" {
		hint += fmt.Sprintf("; an authenticated account has a higher limit: berth upstream update %s --username USER --password-stdin", u.Name)
	}
	return e.WithHint("%s", hint)
}

// CacheRefuses reports whether a cache namespace refuses a request that
// needs action: every write into it (content or metadata), since only its
// upstream fills it. Reading, and deleting (an owner evicting), are as
// anywhere.
func CacheRefuses(a Action) bool { return a == ActionContentWrite || a == ActionMetadataWrite }

// CacheRefusesDocker is CacheRefuses for a Docker repository action
// ("push" is refused).
func CacheRefusesDocker(action string) bool {
	return slices.ContainsFunc(dockerNeeds[action], CacheRefuses)
}

// CacheReadOnly is the refusal of a write into repo, which lies in the
// cache namespace of upstream u.
func CacheReadOnly(u Upstream, repo string) *Error {
	return Errorf(CodeCacheReadOnly, "repository %s is in cache namespace %s, which only upstream %s (%s) fills; it cannot be pushed to", repo, u.Namespace, u.Name, u.Host()).
		WithHint("push to a repository outside %s/, such as team/%s", u.Namespace, lastComponent(repo)).
		WithDetail("upstream", u.Name)
}

func lastComponent(repo string) string {
	if i := strings.LastIndexByte(repo, '/'); i >= 0 {
		return repo[i+1:]
	}
	return repo
}

// UpstreamNotice returns the expiry notice due for u's credential at now,
// as SecretNotice decides for a client secret: secret.expiring at 60, 30,
// 7 and 1 days, then secret.expired; ok is false when u records no expiry
// or no notice is due. once keeps each notice to one per credential (a
// credential replaced, by delete and create, is a new one).
func UpstreamNotice(u Upstream, now time.Time) (t EventType, thresholdDays int, once string, ok bool) {
	if u.ExpiresAt == nil {
		return "", 0, "", false
	}
	return SecretNotice(Secret{ID: u.credentialID(), Expires: *u.ExpiresAt}, now)
}

// credentialID names the credential of u as created, in notice keys.
func (u Upstream) credentialID() string {
	return "upstream:" + u.Name + ":" + strconv.FormatInt(u.Created.UnixMicro(), 10)
}
