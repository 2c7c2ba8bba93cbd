package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// MaxManifestSize bounds a manifest read from an upstream, as the registry
// bounds one pushed to it.
const MaxManifestSize = 4 << 20

// manifestAccept is every manifest media type the cache stores.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// Client reads from upstream registries. It remembers the bearer tokens it
// obtained, per upstream and scope, until shortly before they expire. The
// zero value is not usable: use New.
type Client struct {
	http *http.Client
	now  func() time.Time

	mu     sync.Mutex
	tokens map[string]bearer
	basic  map[string]bool // upstreams that asked for Basic authentication
}

type bearer struct {
	value   string
	expires time.Time
}

// New returns a client that sends requests through rt
// (http.DefaultTransport when nil) and reads the time from now (time.Now
// when nil), which decides when a bearer token has expired.
func New(rt http.RoundTripper, now func() time.Time) *Client {
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Client{http: &http.Client{Transport: rt}, now: now, tokens: map[string]bearer{}, basic: map[string]bool{}}
}

// Manifest is a manifest read from an upstream, its digest verified.
type Manifest struct {
	Digest    berth.Digest
	MediaType string
	Content   []byte
}

// Descriptor is what a HEAD tells of a manifest or blob.
type Descriptor struct {
	Digest    berth.Digest
	MediaType string
	Size      int64
}

// GetManifest reads the manifest ref (a tag or a digest) of the upstream's
// repository repo. The content's digest is checked against a digest ref
// and, for a tag, against the Docker-Content-Digest the upstream sent:
// digest_invalid when they differ. manifest_unknown when the upstream has
// no such manifest.
func (c *Client) GetManifest(ctx context.Context, u berth.Upstream, repo, ref string) (*Manifest, error) {
	resp, err := c.do(ctx, u, repo, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, manifestMissing(err, u, repo, ref)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, berth.UpstreamUnreachable(u, "reading manifest "+repo+":"+ref+": "+cause(err))
	}
	if len(body) > MaxManifestSize {
		return nil, berth.Errorf(berth.CodeTooLarge, "upstream %s sent a manifest of more than %d bytes for %s:%s", u.Name, MaxManifestSize, repo, ref).
			WithHint("pull that image from %s directly; berth keeps no manifest that large", u.URL).WithDetail("upstream", u.Name)
	}
	alg := berth.SHA256
	var want berth.Digest
	if berth.IsDigestReference(ref) {
		want, err = berth.ParseDigest(ref)
		if err != nil {
			return nil, err
		}
		alg = want.Algorithm()
	} else if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if d, err := berth.ParseDigest(h); err == nil {
			want, alg = d, d.Algorithm()
		}
	}
	got := berth.DigestOf(alg, body)
	if want != "" && got != want {
		return nil, berth.Errorf(berth.CodeDigestInvalid, "upstream %s sent a manifest for %s:%s whose digest is %s, not %s", u.Name, repo, ref, got, want).
			WithHint("nothing was kept; pull again, and if it repeats check the upstream with berth upstream verify %s", u.Name).WithDetail("upstream", u.Name)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return &Manifest{Digest: got, MediaType: strings.TrimSpace(mt), Content: body}, nil
}

// HeadManifest asks the upstream which manifest ref names, without
// reading it: what a tag re-check costs (Docker Hub does not count a HEAD
// against its pull limit). manifest_unknown when there is none.
func (c *Client) HeadManifest(ctx context.Context, u berth.Upstream, repo, ref string) (Descriptor, error) {
	resp, err := c.do(ctx, u, repo, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return Descriptor{}, manifestMissing(err, u, repo, ref)
	}
	resp.Body.Close()
	d, err := berth.ParseDigest(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return Descriptor{}, berth.UpstreamUnreachable(u, "its HEAD of "+repo+":"+ref+" named no valid Docker-Content-Digest")
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return Descriptor{Digest: d, MediaType: strings.TrimSpace(mt), Size: resp.ContentLength}, nil
}

// GetBlob opens blob d of the upstream's repository repo; size is -1 when
// the upstream did not say. The caller verifies the bytes (a BlobStore's Put
// does) and closes the body. blob_unknown when the upstream has no such
// blob.
func (c *Client) GetBlob(ctx context.Context, u berth.Upstream, repo string, d berth.Digest) (body io.ReadCloser, size int64, err error) {
	resp, err := c.do(ctx, u, repo, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), "")
	if err != nil {
		return nil, 0, blobMissing(err, u, repo, d)
	}
	return resp.Body, resp.ContentLength, nil
}

// HeadBlob returns the size of blob d of the upstream's repository repo
// (-1 when the upstream did not say), or blob_unknown.
func (c *Client) HeadBlob(ctx context.Context, u berth.Upstream, repo string, d berth.Digest) (int64, error) {
	resp, err := c.do(ctx, u, repo, http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), "")
	if err != nil {
		return 0, blobMissing(err, u, repo, d)
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// Verify checks that the upstream answers as a registry and accepts the
// stored credential: it calls /v2/ and, when challenged, authenticates as
// a pull would (a Docker token for repo, or for no scope when repo is
// empty; or Basic). It returns nil, or the refusal a pull would get.
func (c *Client) Verify(ctx context.Context, u berth.Upstream, repo string) error {
	c.forget(u) // a stale token would hide a credential revoked since
	resp, err := c.do(ctx, u, repo, http.MethodGet, "/v2/", "")
	if err != nil {
		if e := berth.AsError(err); e != nil && e.Code == codeNotFound {
			return berth.UpstreamUnreachable(u, "GET /v2/ answered 404: the URL is not a registry's base URL")
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// codeNotFound marks an upstream 404 until the caller names what is missing.
const codeNotFound = berth.CodeNotFound

func manifestMissing(err error, u berth.Upstream, repo, ref string) error {
	if berth.IsCode(err, codeNotFound) {
		what := "tag"
		if berth.IsDigestReference(ref) {
			what = "manifest"
		}
		hint := fmt.Sprintf("check the name at %s: berth asked it for %s %s of repository %s, as the pull named it after %s/", u.Host(), what, ref, repo, u.Namespace)
		if u.IsDockerHub() {
			hint = fmt.Sprintf("check the name upstream; on Docker Hub an official image is library/NAME, pulled through the cache as %s/NAME", u.Namespace)
		}
		return berth.Errorf(berth.CodeManifestUnknown, "%s %s is not in repository %s of upstream %s (%s)", what, ref, repo, u.Name, u.Host()).
			WithHint("%s", hint)
	}
	return err
}

func blobMissing(err error, u berth.Upstream, repo string, d berth.Digest) error {
	if berth.IsCode(err, codeNotFound) {
		return berth.Errorf(berth.CodeBlobUnknown, "blob %s is not in repository %s of upstream %s (%s)", d, repo, u.Name, u.Host()).
			WithHint("the upstream no longer has it: pull the image by a tag it serves now").WithDetail("digest", d.String()).WithDetail("upstream", u.Name)
	}
	return err
}

// do sends one request for repo's content, authenticating as the
// upstream's challenge asks, and returns a 2xx response or the refusal:
// not_found (codeNotFound) for a 404, upstream_auth_failed for a 401 or
// 403 after authenticating, upstream_rate_limited for a 429, and
// upstream_unreachable for anything else.
func (c *Client) do(ctx context.Context, u berth.Upstream, repo, method, path, accept string) (*http.Response, error) {
	scope := ""
	if repo != "" {
		scope = "repository:" + repo + ":pull"
	}
	send := func(auth string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, u.URL+path, nil)
		if err != nil {
			return nil, berth.UpstreamUnreachable(u, "cannot build a request: "+err.Error())
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		req.Header.Set("User-Agent", "berth (pull-through cache)")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, berth.UpstreamUnreachable(u, cause(err))
		}
		return resp, nil
	}
	resp, err := send(c.cachedAuth(u, scope))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		challenge := resp.Header.Get("WWW-Authenticate")
		drain(resp)
		auth, err := c.authenticate(ctx, u, scope, challenge)
		if err != nil {
			return nil, err
		}
		if resp, err = send(auth); err != nil {
			return nil, err
		}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer drain(resp)
	said := message(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, berth.Errorf(codeNotFound, "upstream %s has no %s", u.Name, path)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		c.forget(u)
		return nil, berth.UpstreamAuthFailed(u, resp.StatusCode, said)
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, berth.UpstreamRateLimited(u, said, resetTime(resp.Header, c.now()), c.now())
	}
	msg := fmt.Sprintf("%s %s answered HTTP %d", method, path, resp.StatusCode)
	if said != "" {
		msg += ": " + said
	}
	return nil, berth.UpstreamUnreachable(u, msg)
}

// tokenKey identifies a bearer token: an upstream as created, with its
// current credential (a token obtained with a replaced one is not used
// again; the key holds a hash of the password, never the password), and a
// scope.
func tokenKey(u berth.Upstream, scope string) string {
	pw := sha256.Sum256([]byte(u.Password.Reveal()))
	return u.Name + "\x00" + u.URL + "\x00" + strconv.FormatInt(u.Created.UnixNano(), 10) + "\x00" +
		u.Username + "\x00" + hex.EncodeToString(pw[:8]) + "\x00" + scope
}

func basicKey(u berth.Upstream) string { return tokenKey(u, "") }

// cachedAuth returns the Authorization value to send first: a bearer token
// still valid for scope, Basic when the upstream asked for it before, else
// none (the upstream's challenge says what it wants).
func (c *Client) cachedAuth(u berth.Upstream, scope string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tokens[tokenKey(u, scope)]; ok && c.now().Before(t.expires) {
		return "Bearer " + t.value
	}
	if c.basic[basicKey(u)] && u.Username != "" {
		return basicAuth(u)
	}
	return ""
}

// maxTokens bounds the bearer tokens a Client remembers: one per upstream
// and repository pulled through it in the last few minutes.
const maxTokens = 4096

// keepToken remembers t under key. Past maxTokens it first forgets the
// expired tokens, and when none has expired, any one: a token forgotten is
// asked for again. c.mu is held.
func (c *Client) keepToken(key string, t bearer) {
	if _, ok := c.tokens[key]; !ok && len(c.tokens) >= maxTokens {
		now := c.now()
		for k, old := range c.tokens {
			if !now.Before(old.expires) {
				delete(c.tokens, k)
			}
		}
		for k := range c.tokens {
			if len(c.tokens) < maxTokens {
				break
			}
			delete(c.tokens, k)
		}
	}
	c.tokens[key] = t
}

// forget drops what the client remembers of u's authentication.
func (c *Client) forget(u berth.Upstream) {
	prefix := tokenKey(u, "")
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.tokens {
		if strings.HasPrefix(k, prefix) {
			delete(c.tokens, k)
		}
	}
	delete(c.basic, basicKey(u))
}

func basicAuth(u berth.Upstream) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(u.Username, u.Password.Reveal())
	return req.Header.Get("Authorization")
}

// authenticate answers a 401's challenge: Basic with the stored credential,
// or a Docker token from the challenge's realm, fetched with the stored
// credential (or none). https://distribution.github.io/distribution/spec/auth/token/
func (c *Client) authenticate(ctx context.Context, u berth.Upstream, scope, challenge string) (string, error) {
	scheme, params := berth.ParseChallenge(challenge)
	switch scheme {
	case "basic":
		if u.Username == "" {
			return "", berth.UpstreamAuthFailed(u, http.StatusUnauthorized, "it asks for Basic credentials and berth holds none for it")
		}
		c.mu.Lock()
		c.basic[basicKey(u)] = true
		c.mu.Unlock()
		return basicAuth(u), nil
	case "bearer":
	default:
		return "", berth.UpstreamUnreachable(u, fmt.Sprintf("it answered 401 with a challenge berth cannot answer (%q)", berth.RedactCredentials(challenge)))
	}
	realm := params["realm"]
	ru, err := url.Parse(realm)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" {
		return "", berth.UpstreamUnreachable(u, fmt.Sprintf("its token realm %q is not an http(s) URL", realm))
	}
	if ru.Scheme == "http" && !berth.IsLoopbackHost(ru.Hostname()) && u.Username != "" {
		return "", berth.UpstreamUnreachable(u, fmt.Sprintf("its token realm %s is plain http; berth does not send the credential there", ru.Redacted()))
	}
	q := ru.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	if s := params["scope"]; s != "" {
		scope = s // the upstream knows best what the request needs
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	ru.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
	if err != nil {
		return "", berth.UpstreamUnreachable(u, "cannot build the token request: "+err.Error())
	}
	if u.Username != "" {
		req.SetBasicAuth(u.Username, u.Password.Reveal())
	}
	req.Header.Set("User-Agent", "berth (pull-through cache)")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", berth.UpstreamUnreachable(u, "its token endpoint "+ru.Host+": "+cause(err))
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", berth.UpstreamAuthFailed(u, resp.StatusCode, message(resp))
	case resp.StatusCode == http.StatusTooManyRequests:
		return "", berth.UpstreamRateLimited(u, message(resp), resetTime(resp.Header, c.now()), c.now())
	case resp.StatusCode != http.StatusOK:
		return "", berth.UpstreamUnreachable(u, fmt.Sprintf("its token endpoint %s answered HTTP %d", ru.Host, resp.StatusCode))
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", berth.UpstreamUnreachable(u, "its token endpoint "+ru.Host+" sent no token JSON")
	}
	value := tok.Token
	if value == "" {
		value = tok.AccessToken
	}
	if value == "" {
		return "", berth.UpstreamUnreachable(u, "its token endpoint "+ru.Host+" sent an empty token")
	}
	life := time.Duration(tok.ExpiresIn) * time.Second
	if life < time.Minute {
		life = time.Minute // the spec's default when expires_in is absent
	}
	c.mu.Lock()
	c.keepToken(tokenKey(u, scope), bearer{value: value, expires: c.now().Add(life - 10*time.Second)})
	c.mu.Unlock()
	return "Bearer " + value, nil
}

// message returns what an upstream's error answer says, from the
// distribution error envelope, a token endpoint's JSON, or a short text
// body; "" when it says nothing readable.
func message(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Details          string `json:"details"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(b, &env) == nil {
		switch {
		case len(env.Errors) > 0:
			return berth.RedactCredentials(strings.TrimSpace(env.Errors[0].Code + ": " + env.Errors[0].Message))
		case env.Details != "":
			return berth.RedactCredentials(env.Details)
		case env.ErrorDescription != "":
			return berth.RedactCredentials(env.ErrorDescription)
		case env.Error != "":
			return berth.RedactCredentials(env.Error)
		}
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
		s := strings.TrimSpace(string(b))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return berth.RedactCredentials(s)
	}
	return ""
}

// resetTime reads when a 429 ends: Retry-After (seconds or an HTTP date),
// else X-RateLimit-Reset or RateLimit-Reset (Unix seconds); zero when the
// upstream did not say.
func resetTime(h http.Header, now time.Time) time.Time {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return now.Add(time.Duration(n) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	for _, k := range []string{"X-RateLimit-Reset", "RateLimit-Reset"} {
		if n, err := strconv.ParseInt(strings.TrimSpace(h.Get(k)), 10, 64); err == nil && n > 1e9 {
			return time.Unix(n, 0)
		}
	}
	return time.Time{}
}

// cause describes a transport failure without the URL (which the message
// names already) and without anything the request carried.
func cause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return berth.RedactCredentials(err.Error())
}

// drain reads a little of an answer not used, so that its connection is
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
