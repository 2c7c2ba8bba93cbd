package oauth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// entraAudience is the resource the Entra tokens of these tests are for.
const entraAudience = "api://berth-registry"

// acrEnv is a federated token endpoint with ACR's exchange endpoint beside
// it, an Entra pipeline for oidctest's application and a connection acr
// permitting it.
type acrEnv struct {
	*fedEnv
	exchangeURL string
	entra       berth.Pipeline
	conn        berth.Connection
}

func newACREnv(t *testing.T) *acrEnv {
	t.Helper()
	f := newFedEnv(t)
	var ids atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("exchange-%d", ids.Add(1))
		f.h.ServeExchange(w, r.WithContext(berth.WithRequestID(r.Context(), id)))
	}))
	t.Cleanup(srv.Close)
	p := f.pipeline(berth.PipelineSpec{Name: "acr-push", Preset: berth.PresetEntra, Spec: oidctest.EntraTenant + "/" + oidctest.EntraAppID,
		Issuer: f.iss.URL, Audience: entraAudience})
	return &acrEnv{fedEnv: f, exchangeURL: srv.URL + oauth.ExchangePath, entra: p, conn: f.connection("acr", p)}
}

// acrExchange posts form to the exchange endpoint.
func (a *acrEnv) acrExchange(form url.Values) tokenResp {
	a.t.Helper()
	return a.acrExchangeMethod(http.MethodPost, form)
}

func (a *acrEnv) acrExchangeMethod(method string, form url.Values) tokenResp {
	a.t.Helper()
	if tok := form.Get("access_token"); tok != "" {
		a.noteToken(tok)
	}
	req, err := http.NewRequest(method, a.exchangeURL, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// entraForm is the form az acr login sends, for token.
func entraForm(token string, more ...string) url.Values {
	f := url.Values{"grant_type": {"access_token"}, "service": {audience}, "access_token": {token}}
	for i := 0; i+1 < len(more); i += 2 {
		f.Set(more[i], more[i+1])
	}
	return f
}

// refreshToken returns the refresh token of a successful exchange.
func refreshToken(t *testing.T, r tokenResp) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("exchange: status %d: %s", r.Status, r.Body)
	}
	wantNoStore(t, r)
	var out struct {
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"refresh_token_expires_in"`
	}
	r.decode(t, &out)
	if !strings.HasPrefix(out.RefreshToken, berth.RefreshTokenPrefix) || out.ExpiresIn != int(berth.DefaultSessionLifetime/time.Second) {
		t.Fatalf("exchange answer %s", r.Body)
	}
	return out.RefreshToken
}

// TestACRExchange: an application's Entra token, v2.0 or v1.0, matched by
// azp, appid, oid or sub, is exchanged at /oauth2/exchange with no connection
// named; the refresh token gives access tokens through the refresh_token
// grant, through Docker's GET with Basic user 00000000-0000-0000-0000-000000000000,
// and through the password grant containerd sends, and is never extended.
func TestACRExchange(t *testing.T) {
	a := newACREnv(t)
	tokens := map[string]string{
		"v2.0 by azp":   a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}),
		"v1.0 by appid": a.iss.Entra(oidctest.EntraToken{Version: "1.0", Audience: entraAudience}),
		"by oid":        a.iss.Entra(oidctest.EntraToken{ObjectID: oidctest.EntraAppID, AppID: "11111111-2222-4333-8444-555555555555", Audience: entraAudience}),
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			rt := refreshToken(t, a.acrExchange(entraForm(tok, "tenant", oidctest.EntraTenant)))
			ev, _ := a.audit.last(berth.AuditAuthToken)
			if ev.Result != berth.AuditAllowed || ev.Connection != "acr" || ev.Pipeline != "acr-push" || ev.Detail["grant_type"] != "access_token" {
				t.Errorf("audit event %+v", ev)
			}

			// ACR's next step: grant_type=refresh_token with scope and service.
			r := a.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {audience}, "scope": {"repository:team/app:pull,push"}})
			c := a.verify(t, a.oauthToken(t, r).AccessToken)
			wantAccess(t, c, "repository:team/app:pull,push")
			if c.Subject != a.ci.ID || c.Connection != "acr" || c.Pipeline != "acr-push" {
				t.Errorf("claims %+v", c)
			}

			// docker login HOST -u 00000000-… -p REFRESH_TOKEN, then a pull.
			d := a.dockerToken(t, a.get(scopeQuery("service", audience, "scope", "repository:team/app:pull", "offline_token", "true"), berth.NullClientID, rt))
			if d.RefreshToken != "" {
				t.Errorf("a refresh token used as a password was extended: %+v", d)
			}
			wantAccess(t, a.verify(t, d.Token), "repository:team/app:pull")

			// containerd's OAuth flow: the password grant.
			o := a.oauthToken(t, a.post(url.Values{"grant_type": {"password"}, "username": {berth.NullClientID}, "password": {rt},
				"access_type": {"offline"}, "scope": {"repository:team/app:push"}}))
			if o.RefreshToken != "" {
				t.Errorf("the password grant extended a refresh token: %+v", o)
			}
		})
	}
}

// TestACRExchangeRefusals: each refusal of the exchange with its reason code.
func TestACRExchangeRefusals(t *testing.T) {
	otherTenant := "0f0e0d0c-0b0a-4909-8807-060504030201"
	cases := []struct {
		name   string
		form   func(a *acrEnv) url.Values
		status int
		error  string
		reason berth.Code
	}{
		{"wrong tenant", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Tenant: otherTenant, Audience: entraAudience}))
		}, http.StatusUnauthorized, "invalid_client", berth.CodePipelineUnknown},
		{"wrong app", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{AppID: "11111111-2222-4333-8444-555555555555", Audience: entraAudience}))
		}, http.StatusUnauthorized, "invalid_client", berth.CodePipelineUnknown},
		{"expired", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}, oidctest.Expired(10*time.Minute)))
		}, http.StatusUnauthorized, "invalid_client", berth.CodeAssertionExpired},
		{"another resource", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: "https://management.azure.com/"}))
		}, http.StatusUnauthorized, "invalid_client", berth.CodeAudienceMismatch},
		{"tenant parameter names another tenant", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}), "tenant", otherTenant)
		}, http.StatusBadRequest, "invalid_request", berth.CodeInvalid},
		{"unknown connection", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}), "connection", "nope")
		}, http.StatusBadRequest, "invalid_request", berth.CodeConnectionUnknown},
		{"two connections permit it", func(a *acrEnv) url.Values {
			a.connection("acr-2", a.entra)
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}))
		}, http.StatusBadRequest, "invalid_request", berth.CodeConnectionUnknown},
		{"permitted on none", func(a *acrEnv) url.Values {
			a.pipeline(berth.PipelineSpec{Name: "entra-other", Preset: berth.PresetEntra, Spec: oidctest.EntraTenant + "/" + "22222222-2222-4333-8444-555555555555",
				Issuer: a.iss.URL, Audience: entraAudience})
			return entraForm(a.iss.Entra(oidctest.EntraToken{AppID: "22222222-2222-4333-8444-555555555555", ObjectID: "33333333-2222-4333-8444-555555555555", Audience: entraAudience}))
		}, http.StatusForbidden, "invalid_request", berth.CodePipelineNotAuthorized},
		{"no token", func(*acrEnv) url.Values { return entraForm("") }, http.StatusBadRequest, "invalid_request", berth.CodeInvalid},
		{"AAD refresh token grant", func(a *acrEnv) url.Values {
			f := entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}))
			f.Set("grant_type", "refresh_token")
			return f
		}, http.StatusBadRequest, "unsupported_grant_type", berth.CodeUnsupported},
		{"service of another registry", func(a *acrEnv) url.Values {
			return entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}), "service", "contoso.azurecr.io")
		}, http.StatusBadRequest, "invalid_request", berth.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newACREnv(t)
			r := a.acrExchange(tc.form(a))
			b := wantRefusal(t, r, tc.status, tc.error, tc.reason)
			t.Logf("%s: %s (hint: %s)", b.Reason, b.Description, b.Hint)
			if ev, ok := a.audit.last(berth.AuditAuthToken); !ok || ev.Result != berth.AuditDenied || ev.Reason != tc.reason {
				t.Errorf("audit event %+v", ev)
			}
		})
	}

	t.Run("GET", func(t *testing.T) {
		a := newACREnv(t)
		r := a.acrExchangeMethod(http.MethodGet, url.Values{})
		wantRefusal(t, r, http.StatusMethodNotAllowed, "invalid_request", berth.CodeUnsupported)
		if r.Header.Get("Allow") != "POST" {
			t.Errorf("Allow %q", r.Header.Get("Allow"))
		}
	})
}

// TestNullClientIDRefusals: with the null GUID, an access token (what berth
// login --expose-token prints) or a revoked refresh token is refused as a
// refresh token, and counted against the address, not a client id everyone
// shares.
func TestNullClientIDRefusals(t *testing.T) {
	a := newACREnv(t)
	rt := refreshToken(t, a.acrExchange(entraForm(a.iss.Entra(oidctest.EntraToken{Audience: entraAudience}))))
	access := a.oauthToken(t, a.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})).AccessToken
	b := wantRefusal(t, a.get(scopeQuery("service", audience), berth.NullClientID, access), http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)
	if !strings.Contains(b.Description, "access token") {
		t.Errorf("the refusal does not say an access token was sent: %q", b.Description)
	}
	wantRefusal(t, a.get(scopeQuery("service", audience), berth.NullClientID, unknownRefreshToken(t)), http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)
	// The right refresh token still works: the failures counted against the
	// address, which allows more, and no client id was locked.
	for i := 0; i < 6; i++ {
		a.get(scopeQuery("service", audience), berth.NullClientID, unknownRefreshToken(t))
	}
	a.dockerToken(t, a.get(scopeQuery("service", audience, "scope", "repository:team/app:pull"), berth.NullClientID, rt))
}

// TestACRExchangeSameTokenAgain: az acr login sends the Entra access token
// the Azure CLI cached, once per pipeline step: from the address that first
// exchanged it, the same token is exchanged again; from another address it
// is a replay, and so is a second exchange of it at the token endpoint, or
// of a CI job's ID token at the exchange endpoint.
func TestACRExchangeSameTokenAgain(t *testing.T) {
	a := newACREnv(t)
	tok := a.iss.Entra(oidctest.EntraToken{Audience: entraAudience})
	refreshToken(t, a.acrExchange(entraForm(tok)))
	refreshToken(t, a.acrExchange(entraForm(tok))) // the next step, the same agent
	ctx := t.Context()
	_, err := a.p.ExchangeAccessToken(ctx, tok, "", "192.0.2.7")
	if e := berth.AsError(err); e == nil || e.Code != berth.CodeAssertionReplayed || e.Detail["source"] != "192.0.2.7" || e.Hint == "" {
		t.Errorf("the token from another address: %v, want assertion_replayed naming the address it came from", err)
	}
	if _, err := a.p.Exchange(ctx, tok, "", "127.0.0.1"); !berth.IsCode(err, berth.CodeAssertionReplayed) {
		t.Errorf("the token again at the token endpoint: %v, want assertion_replayed", err)
	}
	// A CI job's ID token starts one session, whichever endpoint takes it.
	gh := a.github("gh-main")
	a.connection("deploy", gh)
	job := a.iss.GitHub(oidctest.GitHubJob{Audience: audience})
	if _, err := a.p.ExchangeAccessToken(ctx, job, "deploy", "127.0.0.1"); err != nil {
		t.Fatalf("a job's ID token at the exchange endpoint: %v", err)
	}
	if _, err := a.p.ExchangeAccessToken(ctx, job, "deploy", "127.0.0.1"); !berth.IsCode(err, berth.CodeAssertionReplayed) {
		t.Errorf("a job's ID token again from the same address: %v, want assertion_replayed", err)
	}
}
