package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
)

// ExchangePath is the token exchange endpoint in the shape of Azure Container
// Registry's: an identity provider's token in, a registry refresh token out.
const ExchangePath = "/oauth2/exchange"

// exchangeResponse is the answer of ExchangePath, as ACR gives it, with the
// refresh token's lifetime beside it.
type exchangeResponse struct {
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int    `json:"refresh_token_expires_in"`
}

// ServeExchange serves POST ExchangePath, the exchange Azure Container
// Registry's clients (az acr login, the Azure SDKs' ExchangeAadAccessTokenForAcrRefreshToken)
// make: an application/x-www-form-urlencoded body with grant_type=access_token,
// service (the registry's), access_token (an OIDC token of a registered
// pipeline's issuer, such as an Entra ID token: berth pipeline create NAME
// --entra TENANT/APP), and optionally tenant (the token's tid must then be
// it) and connection (the service connection to act through; without it, the
// one connection that permits the matched pipeline). It answers
// {"refresh_token": …}: the session of a federated login, which
// grant_type=refresh_token on TokenPath turns into access tokens, and which
// docker login takes as the password of user berth.NullClientID.
//
// The token is verified as a client assertion is (Provider.Exchange): its
// refusals are assertion_invalid, assertion_expired, pipeline_unknown,
// audience_mismatch, pipeline_not_authorized, connection_unknown and
// connection_disabled, rendered as the token endpoint renders them.
func (h *TokenHandler) ServeExchange(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	var body any
	var err error
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		err = berth.Errorf(berth.CodeUnsupported, "%s answers POST with a form body, not %s", ExchangePath, berth.Truncate(r.Method, 20)).
			WithHint("POST grant_type=access_token&service=SERVICE&access_token=TOKEN as application/x-www-form-urlencoded")
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestSize)
		body, err = h.serveExchange(r)
	}
	h.respond(w, r, body, err)
}

func (h *TokenHandler) serveExchange(r *http.Request) (any, error) {
	if err := refuseQueryCredentials(r.URL.Query()); err != nil {
		return nil, err
	}
	f, err := postForm(r)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"access_token", "tenant"} {
		if len(f[name]) > 1 {
			return nil, berth.Errorf(berth.CodeInvalid, "the parameter %s is given %d times; each parameter is given once", name, len(f[name]))
		}
	}
	switch g := f.Get("grant_type"); g {
	case "access_token":
	case "":
		return nil, berth.Errorf(berth.CodeInvalid, "the grant_type parameter is missing").
			WithHint("send grant_type=access_token with the identity provider's token as access_token")
	default:
		return nil, &oauthError{name: "unsupported_grant_type", err: berth.Errorf(berth.CodeUnsupported,
			"grant_type %s is not supported at %s; berth exchanges grant_type=access_token (an OIDC token of a registered pipeline)", echo(g), ExchangePath).
			WithHint("send grant_type=access_token with the token as access_token; redeem a berth refresh token with grant_type=refresh_token at %s", TokenPath)}
	}
	if err := h.checkService(f.Get("service")); err != nil {
		return nil, err
	}
	token := f.Get("access_token")
	if token == "" {
		return nil, berth.Errorf(berth.CodeInvalid, "the access_token parameter is missing").
			WithHint("send the identity provider's token (az account get-access-token --query accessToken, or the CI job's ID token) as access_token")
	}
	if err := checkTenant(token, f.Get("tenant")); err != nil {
		return nil, err
	}
	ctx := r.Context()
	caller, err := h.Provider.ExchangeAccessToken(ctx, token, f.Get("connection"), SourceAddress(r))
	if err != nil {
		return nil, err
	}
	refresh, expires, err := h.Provider.IssueRefreshToken(ctx, caller)
	if err != nil {
		return nil, err
	}
	now := h.Provider.Now()
	h.logIssued(r, "access_token", issued{caller: caller, refresh: refresh, refreshExpires: expires,
		claims: berth.AccessClaims{IssuedAt: now}})
	return exchangeResponse{RefreshToken: refresh.Reveal(), RefreshTokenExpiresIn: int(expires.Sub(now) / time.Second)}, nil
}

// checkTenant returns invalid when tenant is given and the token's tid claim
// names another tenant. The claim is read unverified: the refusal tells the
// caller only what it sent.
func checkTenant(token, tenant string) error {
	if tenant == "" {
		return nil
	}
	jws, err := jose.ParseSignedCompact(token, assertionAlgorithms)
	if err != nil {
		return nil // Exchange says what is wrong with the token
	}
	var c struct {
		Tenant string `json:"tid"`
	}
	_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	if c.Tenant != "" && !strings.EqualFold(c.Tenant, tenant) {
		return berth.Errorf(berth.CodeInvalid, "the request names tenant %s, but the token was issued in tenant %s", echo(tenant), echo(c.Tenant)).
			WithHint("send the tenant the token comes from, or leave tenant out; the pipeline's --entra TENANT decides which tenants berth trusts")
	}
	return nil
}

// connectionFor returns the service connection an exchange by pipeline pl
// acts through: the one named name, else the only federated connection that
// permits pl. It returns connection_unknown when the named one does not exist
// or, with no name, when several permit pl; pipeline_not_authorized when
// none does. Refusals carry the pipeline and run.
func (p *Provider) connectionFor(ctx context.Context, pl berth.Pipeline, name, run string) (berth.Connection, error) {
	if name != "" {
		conn, err := p.Store.FindConnectionByName(ctx, name)
		if berth.IsCode(err, berth.CodeNotFound) {
			return berth.Connection{}, withUse(berth.ConnectionUnknown(name), pl.Name, run)
		}
		return conn, err
	}
	all, err := p.Store.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return berth.Connection{}, err
	}
	var permitting []berth.Connection
	var names []string
	for _, c := range all {
		if c.Auth == berth.ConnectionFederated && c.Permits(pl.ID) {
			permitting = append(permitting, c)
			names = append(names, c.Name)
		}
	}
	switch len(permitting) {
	case 1:
		return permitting[0], nil
	case 0:
		return berth.Connection{}, withUse(berth.Errorf(berth.CodePipelineNotAuthorized,
			"the request names no service connection, and pipeline %s is permitted on none", pl.Name).
			WithHint("berth connection authorize CONNECTION --pipeline %s", pl.Name), pl.Name, run)
	}
	return berth.Connection{}, withUse(berth.Errorf(berth.CodeConnectionUnknown,
		"the request names no service connection, and pipeline %s is permitted on %d: %s", pl.Name, len(names), strings.Join(names, ", ")).
		WithHint("send connection=NAME, one of %s", strings.Join(names, ", ")), pl.Name, run)
}

// authenticateRefreshToken redeems the refresh token sent as the password of
// user, one of the berth.RefreshTokenUser names. An access token sent in its
// place is told apart, since berth login --expose-token prints one.
func (p *Provider) authenticateRefreshToken(ctx context.Context, user, value, source string) (*berth.Caller, error) {
	c, err := p.RedeemRefreshToken(ctx, value, source)
	if berth.IsCode(err, berth.CodeRefreshTokenInvalid) && !strings.HasPrefix(value, berth.RefreshTokenPrefix) && strings.Count(value, ".") == 2 {
		return nil, berth.Errorf(berth.CodeRefreshTokenInvalid, "the password sent with user %s is an access token (a JWT), not a refresh token", user).
			WithHint("use a refresh token: the refresh_token of POST %s, or berth login HOST, which stores one behind docker-credential-berth", ExchangePath)
	}
	return c, err
}
