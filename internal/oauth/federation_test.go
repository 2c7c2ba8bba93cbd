package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// memAudit keeps the events the token endpoint records.
type memAudit struct {
	mu     sync.Mutex
	events []berth.AuditEvent
}

func (a *memAudit) Record(e berth.AuditEvent) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
}

func (a *memAudit) last(action berth.AuditAction) (berth.AuditEvent, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.events) - 1; i >= 0; i-- {
		if a.events[i].Action == action {
			return a.events[i], true
		}
	}
	return berth.AuditEvent{}, false
}

// fedEnv is a token endpoint with federation, a test CI issuer and a
// principal ci-web that may push to team/app.
type fedEnv struct {
	*tokenEnv
	iss   *oidctest.Issuer
	audit *memAudit
	ci    testClient
}

func newFedEnv(t *testing.T) *fedEnv {
	t.Helper()
	e := newTokenEnv(t)
	iss := oidctest.New(t)
	iss.Now = e.clock.Now
	e.p.Federation = &oauth.Federation{Now: e.clock.Now, Logger: e.p.Logger}
	audit := &memAudit{}
	e.h.Audit = audit
	return &fedEnv{tokenEnv: e, iss: iss, audit: audit, ci: e.client("ci-web", 90*24*time.Hour, "push team/app")}
}

// pipeline registers a pipeline.
func (f *fedEnv) pipeline(spec berth.PipelineSpec) berth.Pipeline {
	f.t.Helper()
	p, err := berth.NewPipeline(f.rand, spec, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.CreatePipeline(context.Background(), p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// github registers the GitHub Actions pipeline of org/app on main at the
// test issuer.
func (f *fedEnv) github(name string) berth.Pipeline {
	return f.pipeline(berth.PipelineSpec{Name: name, Preset: berth.PresetGitHub, Spec: "org/app@main", Issuer: f.iss.URL})
}

// connection creates a federated connection of ci-web permitting pipelines.
func (f *fedEnv) connection(name string, permits ...berth.Pipeline) berth.Connection {
	f.t.Helper()
	c, err := berth.NewConnection(f.rand, name, f.ci.ID, berth.ConnectionFederated, nil, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, p := range permits {
		c.Pipelines = append(c.Pipelines, p.ID)
	}
	if err := f.db.CreateConnection(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// noteToken remembers an ID token: never in a log or an error body.
func (f *fedEnv) noteToken(token string) {
	f.mu.Lock()
	f.refresh = append(f.refresh, token)
	f.mu.Unlock()
}

// assertion exchanges token as a JWT client assertion (RFC 7523).
func (f *fedEnv) assertion(token, conn string) tokenResp {
	f.t.Helper()
	f.noteToken(token)
	return f.post(url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {token},
		"connection":            {conn},
		"scope":                 {"repository:team/app:pull,push"},
	})
}

// exchange exchanges token by RFC 8693 token exchange.
func (f *fedEnv) exchange(token, conn string) tokenResp {
	f.t.Helper()
	f.noteToken(token)
	return f.post(url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {token},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"connection":         {conn},
		"scope":              {"repository:team/app:pull,push"},
	})
}

type grant struct {
	name string
	send func(f *fedEnv, token, conn string) tokenResp
}

var grants = []grant{{"client_assertion", (*fedEnv).assertion}, {"token_exchange", (*fedEnv).exchange}}

// TestFederationGrants: an ID token of each CI system, through either grant,
// yields an access token acting as the connection's principal, carrying the
// connection, pipeline and run, and a refresh token; the audit event names
// them too.
func TestFederationGrants(t *testing.T) {
	for _, g := range grants {
		t.Run(g.name, func(t *testing.T) {
			f := newFedEnv(t)
			gh := f.github("github-main")
			gl := f.pipeline(berth.PipelineSpec{Name: "gitlab-main", Preset: berth.PresetGitLab, Spec: "group/app@main", Issuer: f.iss.URL})
			az := f.pipeline(berth.PipelineSpec{Name: "azure", Preset: berth.PresetAzureDevOps, Spec: "contoso/web/berth",
				Issuer: f.iss.URL, Audience: oidctest.AzureAudience})
			f.connection("deploy", gh, gl, az)

			for _, tc := range []struct {
				pipeline, run, token string
			}{
				{"github-main", "build run 4242", f.iss.GitHub(oidctest.GitHubJob{Audience: audience})},
				{"gitlab-main", "pipeline 574 job 302", f.iss.GitLab(oidctest.GitLabJob{Audience: audience})},
				{"azure", "token ", f.iss.Azure(oidctest.AzureJob{})},
			} {
				r := g.send(f, tc.token, "deploy")
				tok := f.oauthToken(t, r)
				if tok.RefreshToken == "" {
					t.Errorf("%s: no refresh token: %s", tc.pipeline, r.Body)
				}
				if strings.Contains(string(r.Body), "issued_token_type") != (g.name == "token_exchange") {
					t.Errorf("%s: issued_token_type only for a token exchange: %s", tc.pipeline, r.Body)
				}
				c := f.verify(t, tok.AccessToken)
				wantAccess(t, c, "repository:team/app:pull,push")
				if c.Subject != f.ci.ID || c.Connection != "deploy" || c.Pipeline != tc.pipeline || !strings.HasPrefix(c.Run, tc.run) ||
					!strings.HasPrefix(c.CredentialID, "connection:") {
					t.Errorf("%s: claims %+v", tc.pipeline, c)
				}
				caller, err := f.p.AuthenticateToken(context.Background(), tok.AccessToken)
				if err != nil || caller.Connection != "deploy" || caller.Pipeline != tc.pipeline || caller.Run != c.Run {
					t.Errorf("%s: AuthenticateToken: %+v, %v", tc.pipeline, caller, err)
				}
				ev, _ := f.audit.last(berth.AuditAuthToken)
				if ev.Result != berth.AuditAllowed || ev.Connection != "deploy" || ev.Pipeline != tc.pipeline ||
					ev.Detail["ci_run"] != c.Run || ev.Actor != "ci-web" || ev.Detail["refresh_token"] != "true" {
					t.Errorf("%s: audit event %+v", tc.pipeline, ev)
				}
			}
			if n := f.iss.JWKSFetches(); n != 1 {
				t.Errorf("%d JWKS fetches for three exchanges; want 1 (cached)", n)
			}
		})
	}
}

// TestFederationClientIDNamesTheConnection: without connection, client_id
// names it (RFC 7523 section 3).
func TestFederationClientIDNamesTheConnection(t *testing.T) {
	f := newFedEnv(t)
	f.connection("deploy", f.github("github-main"))
	token := f.iss.GitHub(oidctest.GitHubJob{Audience: audience})
	f.noteToken(token)
	r := f.post(url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {token},
		"client_id":             {"deploy"},
	})
	if c := f.verify(t, f.oauthToken(t, r).AccessToken); c.Connection != "deploy" {
		t.Errorf("claims %+v", c)
	}
}

// TestFederationRefusals triggers every reason code of the exchange through
// both grants: invalid_client (401) or unauthorized_client for a client
// assertion, invalid_request for a token exchange (RFC 8693 section 2.2.2).
func TestFederationRefusals(t *testing.T) {
	type refusal struct {
		name    string
		token   func(f *fedEnv) string
		conn    string
		reason  berth.Code
		message string // a fact the description must state
		// secret is what the description must not state: what an unverified
		// token must not learn.
		secret string
		// audited is what the audit event's detail must hold.
		audited string
	}
	cases := []refusal{
		{name: "garbage", token: func(*fedEnv) string { return "garbage" }, conn: "deploy",
			reason: berth.CodeAssertionInvalid, message: "not a JWT"},
		{name: "three parts of garbage", token: func(*fedEnv) string { return "a.b.c" }, conn: "deploy",
			reason: berth.CodeAssertionInvalid, message: "not a well-formed JWT"},
		{name: "bad signature", conn: "deploy", reason: berth.CodeAssertionInvalid, message: "signature does not verify",
			token: func(f *fedEnv) string {
				return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}, oidctest.WithOtherKey())
			}},
		{name: "unknown kid", conn: "deploy", reason: berth.CodeAssertionInvalid, message: `key "unknown-kid"`,
			token: func(f *fedEnv) string {
				return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}, oidctest.WithUnknownKid())
			}},
		{name: "unreachable issuer", conn: "deploy", reason: berth.CodeAssertionInvalid, message: "connection refused",
			token: func(f *fedEnv) string {
				gone := oidctest.New(f.t)
				gone.Now = f.clock.Now
				f.pipeline(berth.PipelineSpec{Name: "gone", Issuer: gone.URL, Subject: "*"})
				token := gone.GitHub(oidctest.GitHubJob{Audience: audience})
				gone.Close()
				return token
			}},
		{name: "issuer answers 404", conn: "deploy", reason: berth.CodeAssertionInvalid, message: "status 404",
			token: func(f *fedEnv) string {
				f.iss.SetStatus(http.StatusNotFound)
				return f.iss.GitHub(oidctest.GitHubJob{Audience: audience})
			}},
		{name: "expired", conn: "deploy", reason: berth.CodeAssertionExpired, message: "expired at",
			token: func(f *fedEnv) string {
				return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}, oidctest.Expired(10*time.Minute))
			}},
		{name: "subject of an environment", conn: "deploy", reason: berth.CodePipelineUnknown, message: "no registered pipeline matches",
			secret: "github-main", audited: "github-main (subject",
			token: func(f *fedEnv) string {
				return f.iss.GitHub(oidctest.GitHubJob{Audience: audience, Environment: "prod"})
			}},
		{name: "unregistered issuer", conn: "deploy", reason: berth.CodePipelineUnknown, secret: "github-main", audited: "pipelines are registered for http://127.0.0.1",
			token: func(f *fedEnv) string {
				other := oidctest.New(f.t)
				other.Now = f.clock.Now
				return other.GitHub(oidctest.GitHubJob{Audience: audience})
			}},
		{name: "audience", conn: "deploy", reason: berth.CodeAudienceMismatch, message: "expects \"registry.test\"", secret: "github-main",
			token: func(f *fedEnv) string {
				return f.iss.GitHub(oidctest.GitHubJob{Audience: "https://github.com/org"})
			}},
		{name: "pipeline not permitted", conn: "other", reason: berth.CodePipelineNotAuthorized, message: "not permitted",
			token: func(f *fedEnv) string { return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}) }},
		{name: "unknown connection", conn: "nope", reason: berth.CodeConnectionUnknown, message: `"nope"`,
			token: func(f *fedEnv) string { return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}) }},
		{name: "no connection", conn: "", reason: berth.CodeConnectionUnknown, message: "names no service connection",
			token: func(f *fedEnv) string { return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}) }},
		{name: "disabled connection", conn: "off", reason: berth.CodeConnectionDisabled, message: "disabled",
			token: func(f *fedEnv) string { return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}) }},
	}
	for _, g := range grants {
		for _, tc := range cases {
			t.Run(g.name+"/"+tc.name, func(t *testing.T) {
				f := newFedEnv(t)
				gh := f.github("github-main")
				f.connection("deploy", gh)
				other := f.connection("other")
				off := f.connection("off", gh)
				yes := true
				if _, err := f.db.UpdateConnection(context.Background(), off.ID, berth.ConnectionUpdate{Disabled: &yes}); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(time.Minute) // past KeyRefetchInterval for an unknown kid, were keys cached
				r := g.send(f, tc.token(f), tc.conn)

				status, oauthErr := http.StatusUnauthorized, "invalid_client"
				switch {
				case g.name == "token_exchange":
					status, oauthErr = http.StatusBadRequest, "invalid_request"
				case tc.reason == berth.CodePipelineNotAuthorized:
					status, oauthErr = http.StatusBadRequest, "unauthorized_client"
				}
				b := wantRefusal(t, r, status, oauthErr, tc.reason)
				t.Logf("%s: %s (hint: %s)", b.Reason, b.Description, b.Hint)
				if !strings.Contains(b.Description, tc.message) {
					t.Errorf("description %q lacks %q", b.Description, tc.message)
				}
				if tc.secret != "" && strings.Contains(b.Description+b.Hint, tc.secret) {
					t.Errorf("refusal %q (hint %q) reveals %q", b.Description, b.Hint, tc.secret)
				}
				ev, ok := f.audit.last(berth.AuditAuthToken)
				if !ok || ev.Result != berth.AuditDenied || ev.Reason != tc.reason || ev.Connection != tc.conn {
					t.Errorf("audit event %+v", ev)
				}
				if tc.audited != "" && !strings.Contains(fmt.Sprint(ev.Detail), tc.audited) {
					t.Errorf("audit event detail %v lacks %q", ev.Detail, tc.audited)
				}
				// The pipeline is known once the token matched one (or all but
				// its audience); with no connection named, two permit it.
				matched := slices.Contains([]berth.Code{berth.CodeAudienceMismatch, berth.CodePipelineNotAuthorized,
					berth.CodeConnectionUnknown, berth.CodeConnectionDisabled}, tc.reason)
				if matched != (ev.Pipeline == "github-main") {
					t.Errorf("audit event names pipeline %q", ev.Pipeline)
				}
				reqs, err := f.db.FindPermissionRequests(context.Background(), other.ID)
				if err != nil {
					t.Fatal(err)
				}
				pe, requested := f.audit.last(berth.AuditPermissionRequested)
				if tc.reason != berth.CodePipelineNotAuthorized {
					if len(reqs) != 0 || requested {
						t.Errorf("permission requests %+v, audit %+v", reqs, pe)
					}
					return
				}
				if len(reqs) != 1 || reqs[0].PipelineID != gh.ID || reqs[0].Count != 1 || reqs[0].Run != "build run 4242" {
					t.Errorf("permission requests %+v", reqs)
				}
				if pe.Target != "other" || pe.Connection != "other" || pe.Pipeline != "github-main" || pe.Detail["ci_run"] != "build run 4242" {
					t.Errorf("permission request audit event %+v", pe)
				}
			})
		}
	}
}

// TestFederationKeyRotation: keys are fetched once and cached; a token with a
// new kid makes one refetch, but not twice within KeyRefetchInterval.
func TestFederationKeyRotation(t *testing.T) {
	f := newFedEnv(t)
	f.connection("deploy", f.github("github-main"))
	mint := func() string { return f.iss.GitHub(oidctest.GitHubJob{Audience: audience}) }
	for range 3 {
		f.oauthToken(t, f.assertion(mint(), "deploy"))
	}
	if n := f.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}

	f.clock.Advance(oauth.KeyRefetchInterval)
	f.iss.RotateKey(false)
	f.oauthToken(t, f.assertion(mint(), "deploy"))
	if n := f.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d JWKS fetches after a rotation, want 2", n)
	}

	f.iss.RotateKey(false) // within the interval: the new kid is not fetched yet
	wantRefusal(t, f.assertion(mint(), "deploy"), http.StatusUnauthorized, "invalid_client", berth.CodeAssertionInvalid)
	if n := f.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2: an unknown kid refetches at most once per interval", n)
	}
	f.clock.Advance(oauth.KeyRefetchInterval)
	f.oauthToken(t, f.assertion(mint(), "deploy"))
	if n := f.iss.JWKSFetches(); n != 3 {
		t.Fatalf("%d JWKS fetches, want 3", n)
	}
}

// TestFederationStaticKeys: a pipeline registered with the issuer's JWKS
// needs no access to the issuer.
func TestFederationStaticKeys(t *testing.T) {
	f := newFedEnv(t)
	p := f.pipeline(berth.PipelineSpec{Name: "airgap", Preset: berth.PresetKubernetes, Spec: "ci/builder",
		Issuer: f.iss.URL, JWKS: f.iss.JWKS()})
	f.connection("deploy", p)
	f.iss.SetStatus(http.StatusServiceUnavailable)
	token := f.iss.Kubernetes(oidctest.KubernetesPod{Namespace: "ci", ServiceAccount: "builder", Audience: audience})
	c := f.verify(t, f.oauthToken(t, f.exchange(token, "deploy")).AccessToken)
	if c.Pipeline != "airgap" || !strings.HasPrefix(c.Run, "token ") {
		t.Errorf("claims %+v", c)
	}
	if f.iss.JWKSFetches()+f.iss.DiscoveryFetches() != 0 {
		t.Error("the issuer was contacted")
	}
}

// TestFederationSession: the refresh token of a federated login renews
// access tokens, carrying the connection, pipeline and run, for
// SessionLifetime and not after; it stops when the pipeline is deleted or no
// longer permitted.
func TestFederationSession(t *testing.T) {
	f := newFedEnv(t)
	gh := f.github("github-main")
	conn := f.connection("deploy", gh)
	f.p.SessionLifetime = 2 * time.Hour
	tok := f.oauthToken(t, f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy"))

	f.clock.Advance(90 * time.Minute) // the ID token expired long ago
	c := f.verify(t, f.oauthToken(t, f.refreshWith(tok.RefreshToken)).AccessToken)
	if c.Connection != "deploy" || c.Pipeline != "github-main" || c.Run != "build run 4242" || c.Subject != f.ci.ID {
		t.Errorf("refreshed claims %+v", c)
	}
	ev, _ := f.audit.last(berth.AuditAuthToken)
	if ev.Connection != "deploy" || ev.Pipeline != "github-main" || ev.Detail["grant_type"] != "refresh_token" {
		t.Errorf("audit event %+v", ev)
	}

	f.clock.Advance(31 * time.Minute)
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)

	// No longer permitted, then deleted.
	f.clock.Advance(time.Minute)
	tok = f.oauthToken(t, f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy"))
	ctx := context.Background()
	if c, err := f.p.AuthenticateToken(ctx, tok.AccessToken); err != nil || c.PipelineID != gh.ID {
		t.Fatalf("access token while permitted: caller %+v, %v", c, err)
	}
	if err := f.db.ForbidPipeline(ctx, conn.ID, gh.ID); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	_, err := f.p.AuthenticateToken(ctx, tok.AccessToken)
	wantCode(t, "access token of a pipeline no longer permitted", err, berth.CodePipelineNotAuthorized)
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodePipelineNotAuthorized)
	if reqs, _ := f.db.FindPermissionRequests(ctx, conn.ID); len(reqs) != 1 {
		t.Errorf("permission requests %+v", reqs)
	}
	if err := f.db.DeletePipeline(ctx, gh.ID); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodePipelineUnknown)
}

// TestFederationConnectionStateStopsTokens: disabling a connection stops the
// access and refresh tokens issued through it at once; deleting it too.
func TestFederationConnectionStateStopsTokens(t *testing.T) {
	f := newFedEnv(t)
	conn := f.connection("deploy", f.github("github-main"))
	tok := f.oauthToken(t, f.exchange(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy"))
	ctx := context.Background()
	if _, err := f.p.AuthenticateToken(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}

	yes := true
	if _, err := f.db.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	_, err := f.p.AuthenticateToken(ctx, tok.AccessToken)
	wantCode(t, "access token of a disabled connection", err, berth.CodeConnectionDisabled)
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodeConnectionDisabled)

	if err := f.db.DeleteConnection(ctx, conn.ID); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	_, err = f.p.AuthenticateToken(ctx, tok.AccessToken)
	wantCode(t, "access token of a deleted connection", err, berth.CodeConnectionUnknown)
}

// TestFederationRequestErrors: malformed federated requests are
// invalid_request, and the ID token never appears in a URL.
func TestFederationRequestErrors(t *testing.T) {
	f := newFedEnv(t)
	f.connection("deploy", f.github("github-main"))
	token := f.iss.GitHub(oidctest.GitHubJob{Audience: audience})
	f.noteToken(token)
	for name, form := range map[string]url.Values{
		"assertion type": {"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:x"}, "client_assertion": {token}, "connection": {"deploy"}},
		"subject type": {"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {token},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}, "connection": {"deploy"}},
		"actor token": {"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {token},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "actor_token": {"x"}, "connection": {"deploy"}},
		"two connections": {"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {token}, "connection": {"deploy"}, "client_id": {"other"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantRefusal(t, f.post(form), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
		})
	}
	r := f.get(url.Values{"subject_token": {token}})
	wantRefusal(t, r, http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
}

// TestCheckIssuer: berth connection verify loads a pipeline's keys afresh.
func TestCheckIssuer(t *testing.T) {
	f := newFedEnv(t)
	f.iss.RotateKey(true)
	fed := f.p.Federation
	ctx := context.Background()
	p := berth.Pipeline{Name: "gh", Issuer: f.iss.URL}
	if n, err := fed.CheckIssuer(ctx, p); err != nil || n != 2 {
		t.Fatalf("CheckIssuer = %d, %v; want 2 keys", n, err)
	}
	if n, err := fed.CheckIssuer(ctx, berth.Pipeline{Name: "static", Issuer: "https://unreachable.invalid", JWKS: f.iss.JWKS()}); err != nil || n != 2 {
		t.Fatalf("CheckIssuer static = %d, %v", n, err)
	}
	f.iss.SetStatus(http.StatusServiceUnavailable)
	_, err := fed.CheckIssuer(ctx, p)
	wantCode(t, "unreachable issuer", err, berth.CodeAssertionInvalid)
	if e := berth.AsError(err); !strings.Contains(e.Message, "status 503") || e.Hint == "" {
		t.Errorf("CheckIssuer: %v", err)
	}
	_, err = fed.CheckIssuer(ctx, berth.Pipeline{Name: "plain", Issuer: "http://example.com"})
	wantCode(t, "plain http issuer", err, berth.CodeAssertionInvalid)
}

// TestFederationPinnedKeysArePerPipeline: two pipelines of one issuer that
// each pin their own key set, and a third that uses the issuer's published
// keys. A token signed with the second pipeline's key is that pipeline's
// only: with the first pipeline's subject it matches nothing. Pinning a set
// on one pipeline leaves the published keys to the others.
func TestFederationPinnedKeysArePerPipeline(t *testing.T) {
	f := newFedEnv(t)
	other := oidctest.New(t) // key B, under the same kid as the issuer's key
	other.Now = f.clock.Now
	pinnedA := f.pipeline(berth.PipelineSpec{Name: "pinned-a", Subject: "system:serviceaccount:ci:a", Issuer: f.iss.URL, JWKS: f.iss.JWKS()})
	pinnedB := f.pipeline(berth.PipelineSpec{Name: "pinned-b", Subject: "system:serviceaccount:ci:b", Issuer: f.iss.URL, JWKS: other.JWKS()})
	f.connection("deploy", pinnedA, pinnedB, f.github("github-main"))
	if other.Kid() != f.iss.Kid() {
		t.Fatalf("kids %q and %q: the test needs one kid for both keys", other.Kid(), f.iss.Kid())
	}
	mintB := func(sub string) string {
		return other.Mint(map[string]any{"iss": f.iss.URL, "sub": sub, "aud": audience})
	}
	for _, g := range grants {
		t.Run(g.name, func(t *testing.T) {
			r := g.send(f, mintB("system:serviceaccount:ci:a"), "deploy")
			if r.Status == http.StatusOK {
				t.Fatalf("a token signed with pinned-b's key was accepted as pinned-a: %s", r.Body)
			}
			var b errorBody
			r.decode(t, &b)
			if b.Reason != string(berth.CodePipelineUnknown) {
				t.Fatalf("reason %q, want pipeline_unknown: %s", b.Reason, r.Body)
			}
			for name, token := range map[string]string{
				"pinned-b":    mintB("system:serviceaccount:ci:b"),
				"pinned-a":    f.iss.Mint(map[string]any{"sub": "system:serviceaccount:ci:a", "aud": audience}),
				"github-main": f.iss.GitHub(oidctest.GitHubJob{Audience: audience}),
			} {
				if c := f.verify(t, f.oauthToken(t, g.send(f, token, "deploy")).AccessToken); c.Pipeline != name {
					t.Errorf("token of %s matched %q", name, c.Pipeline)
				}
			}
		})
	}
}

// TestFederationRefusalFromKeysThatLoaded: a pipeline pins the issuer's
// keys, another of the same issuer pins none and the issuer cannot be
// reached (a cluster berth cannot call). A token for the first that expired
// is assertion_expired, what the keys that loaded say, not the failure to
// fetch keys the token never needed.
func TestFederationRefusalFromKeysThatLoaded(t *testing.T) {
	f := newFedEnv(t)
	pinned := f.pipeline(berth.PipelineSpec{Name: "pinned", Subject: "system:serviceaccount:apps:web", Issuer: f.iss.URL, JWKS: f.iss.JWKS()})
	published := f.pipeline(berth.PipelineSpec{Name: "published", Subject: "system:serviceaccount:apps:*", Issuer: f.iss.URL})
	f.connection("deploy", pinned, published)
	f.iss.SetStatus(http.StatusServiceUnavailable)
	expired := f.iss.Mint(map[string]any{"sub": "system:serviceaccount:apps:web", "aud": audience,
		"iat": f.clock.Now().Add(-2 * time.Hour).Unix(), "nbf": f.clock.Now().Add(-2 * time.Hour).Unix(), "exp": f.clock.Now().Add(-time.Hour).Unix()})
	for _, g := range grants {
		t.Run(g.name, func(t *testing.T) {
			var b errorBody
			g.send(f, expired, "deploy").decode(t, &b)
			if b.Reason != string(berth.CodeAssertionExpired) {
				t.Fatalf("reason %q, want assertion_expired: %+v", b.Reason, b)
			}
		})
	}
}

// TestFederationJWKSURIOnTheInternalNetwork: a discovery document may name
// key sets on its own host, wherever that is, but not the metadata service
// or another host on the internal network.
func TestFederationJWKSURIOnTheInternalNetwork(t *testing.T) {
	for jwksURI, ok := range map[string]bool{
		"http://169.254.169.254/latest/meta-data/iam": false,
		"https://10.0.0.7/keys":                       false,
		"https://metadata.google.internal/keys":       false,
		"":                                            true, // the issuer's own /jwks
	} {
		f := newFedEnv(t)
		f.connection("deploy", f.github("github-main"))
		if jwksURI != "" {
			f.iss.JWKSURI = jwksURI
		}
		r := f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy")
		if !ok {
			b := wantRefusal(t, r, http.StatusUnauthorized, "invalid_client", berth.CodeAssertionInvalid)
			if !strings.Contains(b.Description, "jwks_uri berth will not call") {
				t.Errorf("%s: %s", jwksURI, b.Description)
			}
			continue
		}
		f.oauthToken(t, r)
	}
}

// TestFederationReplay: an ID token starts one session. Presented again,
// through either grant, before it expires, it is refused as replayed, and
// the audit log says so; a refused exchange does not use it up, and a fresh
// token of the same job still works.
func TestFederationReplay(t *testing.T) {
	f := newFedEnv(t)
	gh := f.github("github-main")
	f.connection("deploy", gh)
	other := f.connection("other") // permits no pipeline
	token := f.iss.GitHub(oidctest.GitHubJob{Audience: audience})

	// Refused first (a connection that does not permit it): not used up.
	wantRefusal(t, f.assertion(token, "other"), http.StatusBadRequest, "unauthorized_client", berth.CodePipelineNotAuthorized)
	f.oauthToken(t, f.assertion(token, "deploy"))
	for _, g := range grants {
		r := g.send(f, token, "deploy")
		if r.Status == http.StatusOK {
			t.Fatalf("%s: the token was exchanged twice: %s", g.name, r.Body)
		}
		var b errorBody
		r.decode(t, &b)
		if b.Reason != string(berth.CodeAssertionReplayed) || b.Hint == "" {
			t.Errorf("%s: %s", g.name, r.Body)
		}
		if ev, _ := f.audit.last(berth.AuditAuthToken); ev.Reason != berth.CodeAssertionReplayed || ev.Pipeline != "github-main" {
			t.Errorf("%s: audit event %+v", g.name, ev)
		}
	}
	// Permitting the other connection does not revive the used token there.
	if err := f.db.PermitPipeline(context.Background(), other.ID, gh.ID); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	wantRefusal(t, f.assertion(token, "other"), http.StatusUnauthorized, "invalid_client", berth.CodeAssertionReplayed)
	f.oauthToken(t, f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy"))
}

// TestFederationRunURL: a login from a GitHub Actions job records its run's
// page in the audit event (the connection's history links it), and so does
// a refusal of that job.
func TestFederationRunURL(t *testing.T) {
	f := newFedEnv(t)
	const github = "https://token.actions.githubusercontent.com"
	// GitHub's real issuer, with its keys pinned: nothing is fetched.
	gh := f.pipeline(berth.PipelineSpec{Name: "gh", Preset: berth.PresetGitHub, Spec: "org/app@main", Issuer: github, JWKS: f.iss.JWKS()})
	f.connection("deploy", gh)
	f.connection("other")
	job := func(attempt int) string {
		return f.iss.GitHub(oidctest.GitHubJob{Audience: audience, RunID: 77, RunAttempt: attempt}, oidctest.WithClaims(map[string]any{"iss": github}))
	}
	f.oauthToken(t, f.assertion(job(2), "deploy"))
	ev, _ := f.audit.last(berth.AuditAuthToken)
	if ev.Result != berth.AuditAllowed || ev.Detail["ci_run_url"] != "https://github.com/org/app/actions/runs/77/attempts/2" {
		t.Errorf("the login's audit event: %+v", ev)
	}
	wantRefusal(t, f.assertion(job(1), "other"), http.StatusBadRequest, "unauthorized_client", berth.CodePipelineNotAuthorized)
	ev, _ = f.audit.last(berth.AuditAuthToken)
	if ev.Reason != berth.CodePipelineNotAuthorized || ev.Detail["ci_run_url"] != "https://github.com/org/app/actions/runs/77" {
		t.Errorf("the refusal's audit event: %+v", ev)
	}
}

// A federated login's access tokens stop with its refresh token whatever
// ends the pipeline's use of the connection: on a connection that permits
// every pipeline, the pipeline's deletion; and the connection's conversion
// to one that takes a client secret.
func TestFederationAccessTokensStopWithTheirLogin(t *testing.T) {
	f := newFedEnv(t)
	ctx := context.Background()
	gh := f.github("github-main")
	conn := f.connection("deploy")
	all := true
	if _, err := f.db.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{AllPipelines: &all}); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	tok := f.oauthToken(t, f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy"))
	if _, err := f.p.AuthenticateToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("access token while the pipeline exists: %v", err)
	}
	if err := f.db.DeletePipeline(ctx, gh.ID); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	_, err := f.p.AuthenticateToken(ctx, tok.AccessToken)
	wantCode(t, "access token of a deleted pipeline", err, berth.CodePipelineUnknown)
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodePipelineUnknown)

	gh2 := f.github("github-main-2")
	conn2 := f.connection("deploy2", gh2)
	tok = f.oauthToken(t, f.assertion(f.iss.GitHub(oidctest.GitHubJob{Audience: audience}), "deploy2"))
	if _, err := f.p.AuthenticateToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("access token while the connection is federated: %v", err)
	}
	secret := berth.ConnectionSecret
	if _, err := f.db.UpdateConnection(ctx, conn2.ID, berth.ConnectionUpdate{Auth: &secret}); err != nil {
		t.Fatal(err)
	}
	f.p.Invalidate()
	_, err = f.p.AuthenticateToken(ctx, tok.AccessToken)
	wantCode(t, "access token of a login through a connection now taking a secret", err, berth.CodeInvalid)
	wantRefusal(t, f.refreshWith(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", berth.CodeInvalid)
}
