package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// maxTokenRequestSize bounds the form body of a token request; a real one is
// under 2 KiB.
const maxTokenRequestSize = 64 << 10

// basicRealm is the realm of the Basic challenge that answers a failed client
// authentication (RFC 6749 section 5.2, RFC 7617).
const basicRealm = `Basic realm="berth"`

// TokenHandler serves TokenPath, the token endpoint, in its two dialects:
//
//   - GET, the Docker token authentication protocol
//     (https://distribution.github.io/distribution/spec/auth/token/): optional
//     Basic client credentials, service, scope (repeated and/or
//     space-separated), offline_token=true for a refresh token;
//   - POST, OAuth 2.0 (RFC 6749) with a form body: grant_type
//     client_credentials (section 4.4, client_secret_basic or
//     client_secret_post, section 2.3.1), password (section 4.3, what Docker's
//     OAuth flow sends: https://distribution.github.io/distribution/spec/auth/oauth/)
//     and refresh_token (section 6), with optional scope and service, and
//     access_type=offline for a refresh token;
//   - POST, federation: a CI job's OIDC ID token exchanged for tokens acting
//     as a service connection's principal, either as a JWT client assertion
//     (RFC 7523 section 2.2: grant_type=client_credentials,
//     client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
//     client_assertion=ID_TOKEN) or by token exchange (RFC 8693 section 2.1:
//     grant_type=urn:ietf:params:oauth:grant-type:token-exchange,
//     subject_token=ID_TOKEN, subject_token_type
//     urn:ietf:params:oauth:token-type:id_token or :jwt). The connection is
//     named by the connection parameter, or else by client_id. Both always
//     return a refresh token too: the session of the login, which lasts
//     Provider.SessionLifetime, so that a long job never needs a second ID
//     token.
//
// Wherever a client id and secret may be sent as a user name and password
// (Basic credentials, the password grant), the user berth.IdentityTokenUser,
// or berth.NullClientID as with ACR, with a refresh token as the password
// stands for the refresh_token grant, and never yields a new refresh token.
//
// A token carries the intersection of what was asked for and what the caller's
// roles allow at that moment; being granted nothing is not an error (the
// registry then refuses the request with the real reason). Every refusal is
// rendered by writeError, with the reason code, the facts and the hint. No
// response or log line holds a secret, a refresh token or a hash.
type TokenHandler struct {
	Provider *Provider
	// Audit, when set, receives one event per token request: the token issued
	// and what it grants, or the refusal and its reason.
	Audit berth.AuditRecorder
	// Logger receives refusals (Info), issued tokens (Debug) and internal
	// errors (Error); the Provider's logger, or slog.Default, when nil.
	Logger *slog.Logger
}

// dockerTokenResponse is the Docker token response: token and access_token
// hold the same token, for clients of either name.
type dockerTokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// RefreshTokenExpiresIn is the refresh token's lifetime in seconds, so a
	// client can warn before its login runs out.
	RefreshTokenExpiresIn int `json:"refresh_token_expires_in,omitempty"`
}

// oauthTokenResponse is the RFC 6749 section 5.1 response, with Docker's
// issued_at, and RFC 8693's issued_token_type for a token exchange. Scope is
// the granted scope in the Docker grammar.
type oauthTokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	Scope           string `json:"scope"`
	IssuedAt        string `json:"issued_at"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	// RefreshTokenExpiresIn is the refresh token's lifetime in seconds.
	RefreshTokenExpiresIn int `json:"refresh_token_expires_in,omitempty"`
}

// issued is what one successful token request produced.
type issued struct {
	caller  *berth.Caller
	token   string
	claims  berth.AccessClaims
	granted []berth.ResourceActions
	refresh berth.RefreshTokenValue
	// refreshExpires is when refresh expires; zero without one.
	refreshExpires time.Time
}

// refreshExpiresIn is the refresh token's remaining lifetime in seconds, or 0.
func (o issued) refreshExpiresIn() int {
	if o.refresh.IsZero() {
		return 0
	}
	return int(o.refreshExpires.Sub(o.claims.IssuedAt) / time.Second)
}

func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	var body any
	var err error
	switch r.Method {
	case http.MethodGet:
		body, err = h.serveDocker(r)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestSize)
		body, err = h.serveOAuth(r)
	default:
		w.Header().Set("Allow", "GET, POST")
		err = berth.Errorf(berth.CodeUnsupported, "the token endpoint answers GET (Docker token authentication) and POST (OAuth 2.0), not %s", berth.Truncate(r.Method, 20))
	}
	h.respond(w, r, body, err)
}

// respond writes body as the JSON answer, or audits and renders err.
func (h *TokenHandler) respond(w http.ResponseWriter, r *http.Request, body any, err error) {
	if err != nil {
		h.auditRefused(r, err)
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}

// serveDocker answers a GET per the Docker token specification. The account
// and client_id parameters are accepted and ignored.
func (h *TokenHandler) serveDocker(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := refuseQueryCredentials(q); err != nil {
		return nil, err
	}
	if err := h.checkService(q.Get("service")); err != nil {
		return nil, err
	}
	requested, err := berth.ParseDockerScope(strings.Join(q["scope"], " "))
	if err != nil {
		return nil, err
	}
	offline := false
	if v := q.Get("offline_token"); v != "" {
		if offline, err = strconv.ParseBool(v); err != nil {
			return nil, berth.Errorf(berth.CodeInvalid, "offline_token is %s; it is true or false", echo(v))
		}
	}
	user, secret, present, err := basicCredentials(r)
	if err != nil {
		return nil, err
	}
	if offline && !present {
		return nil, berth.Errorf(berth.CodeCredentialsMissing, "offline_token=true asks for a refresh token, which is issued only to a client that authenticates, and the request carried no credentials").
			WithHint("send the client id and secret as Basic credentials: berth login HOST, or docker login HOST -u CLIENT_ID --password-stdin")
	}
	caller := &berth.Caller{Actor: berth.Actor{Name: berth.AnonymousName}}
	if present {
		if caller, err = h.basicCaller(r, user, secret); err != nil {
			return nil, err
		}
		offline = offline && !berth.RefreshTokenUser(user) // a refresh token is not rotated
	}
	out, err := h.issue(r.Context(), caller, requested, offline)
	if err != nil {
		return nil, err
	}
	h.logIssued(r, "docker", out)
	return dockerTokenResponse{
		Token:        out.token,
		AccessToken:  out.token,
		ExpiresIn:    expiresIn(out.claims),
		IssuedAt:     out.claims.IssuedAt.UTC().Format(time.RFC3339),
		RefreshToken: out.refresh.Reveal(), RefreshTokenExpiresIn: out.refreshExpiresIn(),
	}, nil
}

// serveOAuth answers a POST per RFC 6749. Parameters are read from the form
// body only; the URL is looked at only to refuse credentials in it.
func (h *TokenHandler) serveOAuth(r *http.Request) (any, error) {
	if err := refuseQueryCredentials(r.URL.Query()); err != nil {
		return nil, err
	}
	f, err := postForm(r)
	if err != nil {
		return nil, err
	}
	if err := h.checkService(f.Get("service")); err != nil {
		return nil, err
	}
	requested, err := berth.ParseDockerScope(strings.Join(f["scope"], " "))
	if err != nil {
		return nil, err
	}
	offline := false
	switch v := f.Get("access_type"); v {
	case "", "online":
	case "offline":
		offline = true
	default:
		return nil, berth.Errorf(berth.CodeInvalid, "access_type is %s; it is offline (to also get a refresh token) or online", echo(v))
	}

	ctx, source := r.Context(), SourceAddress(r)
	var caller *berth.Caller
	issuedType := ""
	grant := f.Get("grant_type")
	switch grant {
	case "client_credentials":
		if f.Has("client_assertion") || f.Has("client_assertion_type") {
			if caller, err = h.clientAssertion(r, f); err != nil {
				return nil, err
			}
			offline = true // the session of the login
			break
		}
		user, secret, err := clientCredentials(r, f)
		if err != nil {
			return nil, err
		}
		if caller, err = h.Provider.AuthenticateClient(ctx, user, secret, source); err != nil {
			return nil, err
		}
	case "password":
		// Docker's OAuth flow: username and password are the client id (or
		// principal name) and secret; its client_id names the client
		// program ("docker") and is ignored, as is an Authorization header.
		user, secret := f.Get("username"), f.Get("password")
		if user == "" || secret == "" {
			return nil, berth.Errorf(berth.CodeCredentialsMissing, "the password grant needs username (the client id or principal name) and password (a client secret); %s", missing(map[string]string{"username": user, "password": secret})).
				WithHint("send username=CLIENT_ID and password=SECRET in the form body")
		}
		if caller, err = h.basicCaller(r, user, secret); err != nil {
			return nil, err
		}
		offline = offline && !berth.RefreshTokenUser(user) // a refresh token is not rotated
	case "refresh_token":
		offline = false // a refresh token is not rotated; the client keeps the one it has
		if caller, err = h.redeem(r, f); err != nil {
			return nil, err
		}
	case GrantDeviceCode:
		// RFC 8628 section 3.4: the client polls with its device code
		// until the person approved; then the tokens of the person's
		// session, a refresh token included.
		code := f.Get("device_code")
		if code == "" {
			return nil, berth.Errorf(berth.CodeInvalid, "the device_code grant needs the device_code parameter").
				WithHint("send the device_code that %s answered", DeviceAuthorizationPath)
		}
		if caller, err = h.Provider.RedeemDeviceCode(ctx, code, source); err != nil {
			return nil, err
		}
		offline = true
	case grantTokenExchange:
		if caller, err = h.tokenExchange(r, f); err != nil {
			return nil, err
		}
		offline = true
		issuedType = tokenTypeAccessToken
	case "":
		e := berth.Errorf(berth.CodeInvalid, "the grant_type parameter is missing").
			WithHint("send grant_type=client_credentials, password, refresh_token, %s or %s in an application/x-www-form-urlencoded body", grantTokenExchange, GrantDeviceCode)
		if r.URL.Query().Has("grant_type") {
			e.Message = "the grant_type parameter is in the URL; a POST to the token endpoint carries its parameters in the form body"
		}
		return nil, e
	default:
		return nil, &oauthError{name: "unsupported_grant_type", err: berth.Errorf(berth.CodeUnsupported,
			"grant_type %s is not supported; berth supports client_credentials, password, refresh_token, %s and %s", echo(grant), grantTokenExchange, GrantDeviceCode).
			WithHint("use grant_type=client_credentials with the client id and secret, or refresh_token with a refresh token from berth login")}
	}

	out, err := h.issue(ctx, caller, requested, offline)
	if err != nil {
		return nil, err
	}
	h.logIssued(r, grant, out)
	scopes := make([]string, len(out.granted))
	for i, ra := range out.granted {
		scopes[i] = ra.String()
	}
	return oauthTokenResponse{
		AccessToken:     out.token,
		IssuedTokenType: issuedType,
		TokenType:       "Bearer",
		ExpiresIn:       expiresIn(out.claims),
		Scope:           strings.Join(scopes, " "),
		IssuedAt:        out.claims.IssuedAt.UTC().Format(time.RFC3339),
		RefreshToken:    out.refresh.Reveal(), RefreshTokenExpiresIn: out.refreshExpiresIn(),
	}, nil
}

// Federation parameters: RFC 7523 section 2.2 and RFC 8693 section 3.
const (
	// GrantDeviceCode is RFC 8628's grant type, and DeviceAuthorizationPath
	// its device authorization endpoint (served by package signin).
	GrantDeviceCode         = "urn:ietf:params:oauth:grant-type:device_code"
	DeviceAuthorizationPath = "/oauth2/device_authorization"

	clientAssertionJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantTokenExchange       = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken         = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeJWT             = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken     = "urn:ietf:params:oauth:token-type:access_token"
)

// clientAssertion authenticates a client_credentials request by a CI ID token
// sent as a JWT client assertion (RFC 7523 sections 2.2 and 3.2), for the
// connection named by connection or else client_id. Refusals of the
// assertion, the pipeline or the connection are invalid_client (401); a
// pipeline the connection does not permit is unauthorized_client (RFC 6749
// section 5.2), each with its reason code.
func (h *TokenHandler) clientAssertion(r *http.Request, f url.Values) (*berth.Caller, error) {
	if t := f.Get("client_assertion_type"); t != clientAssertionJWTBearer {
		return nil, berth.Errorf(berth.CodeInvalid, "client_assertion_type is %s; berth accepts %s", echo(t), clientAssertionJWTBearer).
			WithHint("send client_assertion_type=%s and the CI job's ID token as client_assertion", clientAssertionJWTBearer)
	}
	if _, _, present, _ := basicCredentials(r); present || f.Has("client_secret") {
		return nil, berth.Errorf(berth.CodeInvalid, "the request authenticates the client twice, with a client assertion and with a client secret; RFC 6749 section 2.3 allows one method").
			WithHint("send either the client assertion or the client secret")
	}
	name, err := connectionParam(f)
	if err != nil {
		return nil, err
	}
	assertion := f.Get("client_assertion")
	if assertion == "" {
		return nil, &oauthError{name: "invalid_client", status: http.StatusUnauthorized, err: assertionInvalid("the client_assertion parameter is empty")}
	}
	caller, err := h.Provider.Exchange(r.Context(), assertion, name, SourceAddress(r))
	if err != nil {
		switch berth.ErrorCode(err) {
		case berth.CodeTooManyAttempts, berth.CodeInternal, berth.CodeUnsupported:
			return nil, err
		case berth.CodePipelineNotAuthorized, berth.CodeInvalid:
			return nil, &oauthError{name: "unauthorized_client", err: err}
		}
		return nil, &oauthError{name: "invalid_client", status: http.StatusUnauthorized, err: err}
	}
	return caller, nil
}

// tokenExchange checks the token exchange grant (RFC 8693 section 2.1) of a
// CI ID token, the subject_token, for the connection named by connection or
// else client_id. audience and resource are not interpreted: the tokens are
// for this registry. Every refusal of the exchange is invalid_request, as
// section 2.2.2 requires, with its reason code.
func (h *TokenHandler) tokenExchange(r *http.Request, f url.Values) (*berth.Caller, error) {
	switch t := f.Get("subject_token_type"); t {
	case tokenTypeIDToken, tokenTypeJWT:
	case "":
		return nil, berth.Errorf(berth.CodeInvalid, "the subject_token_type parameter is missing").
			WithHint("send subject_token_type=%s with the CI job's ID token as subject_token", tokenTypeIDToken)
	default:
		return nil, berth.Errorf(berth.CodeInvalid, "subject_token_type is %s; berth exchanges %s and %s", echo(t), tokenTypeIDToken, tokenTypeJWT).
			WithHint("send subject_token_type=%s with the CI job's ID token as subject_token", tokenTypeIDToken)
	}
	if t := f.Get("requested_token_type"); t != "" && t != tokenTypeAccessToken {
		return nil, berth.Errorf(berth.CodeInvalid, "requested_token_type is %s; berth issues %s", echo(t), tokenTypeAccessToken)
	}
	if f.Has("actor_token") {
		return nil, berth.Errorf(berth.CodeInvalid, "berth does not support delegation: the request carries an actor_token").
			WithHint("send the CI job's ID token as subject_token alone")
	}
	name, err := connectionParam(f)
	if err != nil {
		return nil, err
	}
	subject := f.Get("subject_token")
	if subject == "" {
		return nil, berth.Errorf(berth.CodeInvalid, "the subject_token parameter is missing").
			WithHint("send the CI job's ID token as subject_token")
	}
	caller, err := h.Provider.Exchange(r.Context(), subject, name, SourceAddress(r))
	if err != nil {
		switch berth.ErrorCode(err) {
		case berth.CodeTooManyAttempts, berth.CodeInternal, berth.CodeUnsupported:
			return nil, err
		}
		return nil, &oauthError{name: "invalid_request", err: err}
	}
	return caller, nil
}

// connectionParam returns the service connection a federated request names:
// connection, or else client_id (RFC 7523 section 3: the client is the
// connection). Both, naming different connections, is invalid.
func connectionParam(f url.Values) (string, error) {
	conn, client := f.Get("connection"), f.Get("client_id")
	switch {
	case conn == "":
		return client, nil
	case client != "" && client != conn:
		return "", berth.Errorf(berth.CodeInvalid, "connection is %s but client_id is %s; they name the same service connection when both are sent", echo(conn), echo(client)).
			WithHint("send connection=NAME alone")
	}
	return conn, nil
}

// federatedConnection returns the connection name a federated token request
// sent, and whether r is one.
func federatedConnection(r *http.Request) (string, bool) {
	f := r.PostForm
	if r.Method != http.MethodPost || f == nil {
		return "", false
	}
	switch f.Get("grant_type") {
	case grantTokenExchange:
	case "client_credentials":
		if !f.Has("client_assertion") && !f.Has("client_assertion_type") {
			return "", false
		}
	default:
		return "", false
	}
	name, _ := connectionParam(f)
	if berth.ValidateConnectionName(name) != nil {
		name = ""
	}
	return name, true
}

// redeem checks the refresh_token grant. A refresh token needs no client
// authentication (Docker clients hold only the token), but a client that does
// authenticate must be the one the token was issued to (RFC 6749 section 6).
// Failures of the grant itself are rendered as invalid_grant, whatever their
// reason code.
func (h *TokenHandler) redeem(r *http.Request, f url.Values) (*berth.Caller, error) {
	ctx, source := r.Context(), SourceAddress(r)
	value := f.Get("refresh_token")
	if value == "" {
		return nil, berth.Errorf(berth.CodeInvalid, "the refresh_token parameter is missing").
			WithHint("send the refresh token that berth login stored, or run berth login again")
	}
	var client *berth.Caller
	if _, _, present, _ := basicCredentials(r); present || f.Has("client_secret") {
		user, secret, err := clientCredentials(r, f)
		if err != nil {
			return nil, err
		}
		if client, err = h.Provider.AuthenticateClient(ctx, user, secret, source); err != nil {
			return nil, err
		}
	}
	caller, err := h.Provider.RedeemRefreshToken(ctx, value, source)
	if err != nil {
		return nil, &oauthError{name: "invalid_grant", err: h.refreshFailureCause(ctx, value, err)}
	}
	if client != nil && client.Actor.ID != caller.Actor.ID {
		return nil, &oauthError{name: "invalid_grant", err: berth.Errorf(berth.CodeRefreshTokenInvalid,
			"the refresh token was issued to another principal than the client that authenticated (%s)", client.Actor.Name).
			WithHint("send the refresh token without client credentials, or with those of the principal it was issued to")}
	}
	return caller, nil
}

// refreshFailureCause explains a refresh token that RedeemRefreshToken refused
// as refresh_token_invalid (revoked or expired) by the state of what it is
// bound to, when that is what ended it: removing a secret revokes its refresh
// tokens, and a token expires with its secret, but "secret 'brt_3kXa…' was
// removed on …" says what happened where "the refresh token was revoked" does
// not. So the answer is the same whether or not the remover also revoked the
// tokens. A token revoked on its own, or unknown, keeps its own reason.
//
// Only a token that is in the store is explained, so this tells nothing to
// whoever guesses values.
func (h *TokenHandler) refreshFailureCause(ctx context.Context, value string, err error) error {
	if !berth.IsCode(err, berth.CodeRefreshTokenInvalid) {
		return err
	}
	v, perr := berth.ParseRefreshTokenValue(value)
	if perr != nil {
		return err
	}
	t, ferr := h.Provider.Store.FindRefreshTokenByHash(ctx, v.Hash())
	if ferr != nil {
		return err
	}
	if _, lerr := h.Provider.live(ctx, t.PrincipalID, t.CredentialID, berth.CodeRefreshTokenInvalid); berth.AsError(lerr) != nil {
		return lerr
	}
	return err
}

// basicCaller authenticates the user name and password of Basic credentials
// or of the password grant (Provider.AuthenticateBasic). A refused refresh
// token, sent with the user berth.IdentityTokenUser, is explained as the
// refresh_token grant explains it.
func (h *TokenHandler) basicCaller(r *http.Request, user, secret string) (*berth.Caller, error) {
	c, err := h.Provider.AuthenticateBasic(r.Context(), user, secret, SourceAddress(r))
	if err != nil && berth.RefreshTokenUser(user) {
		return nil, h.refreshFailureCause(r.Context(), secret, err)
	}
	return c, err
}

// issue grants what caller may have of requested and signs the tokens.
func (h *TokenHandler) issue(ctx context.Context, caller *berth.Caller, requested []berth.ResourceActions, offline bool) (issued, error) {
	p := h.Provider
	granted, err := p.Grant(ctx, caller, requested)
	if err != nil {
		return issued{}, err
	}
	if err := h.refuseNothingGranted(ctx, caller, requested, granted); err != nil {
		return issued{}, err
	}
	token, claims, err := p.IssueAccessToken(caller, granted)
	if err != nil {
		return issued{}, err
	}
	out := issued{caller: caller, token: token, claims: claims, granted: granted}
	if offline {
		if out.refresh, out.refreshExpires, err = p.IssueRefreshToken(ctx, caller); err != nil {
			return issued{}, err
		}
	}
	return out, nil
}

// refuseNothingGranted explains a request of which nothing can be granted.
// The Docker token spec would issue a token granting nothing, and the client
// would then meet a bare 403 on its first HEAD request, which has no body to
// say why; so the refusal comes here, where clients print it: role_missing
// for the strongest action asked on the first repository (credentials_missing
// for the anonymous caller). A request granted anything, or asking only for
// the catalog, is not refused.
func (h *TokenHandler) refuseNothingGranted(ctx context.Context, caller *berth.Caller, requested, granted []berth.ResourceActions) error {
	if len(granted) > 0 {
		return nil
	}
	for _, ra := range requested {
		if ra.Type != "repository" {
			continue
		}
		action := "pull"
		for _, a := range ra.Actions {
			switch {
			case a == "push" || a == "*":
				action = "push"
			case a == "delete" && action == "pull":
				action = "delete"
			}
		}
		if err := h.Provider.Authorize(ctx, caller, ra.Type, ra.Name, action); err != nil {
			return err
		}
	}
	return nil
}

// checkService returns invalid when service is given and is not the
// registry's.
func (h *TokenHandler) checkService(service string) error {
	if service == "" || h.Provider.Service == "" || service == h.Provider.Service {
		return nil
	}
	return berth.Errorf(berth.CodeInvalid, "the token was requested for service %s, but this registry is service %q",
		echo(service), h.Provider.Service).
		WithHint("use the service that the registry's WWW-Authenticate challenge names (%s), or omit the parameter", h.Provider.Service).
		WithDetail("service", h.Provider.Service)
}

// refuseQueryCredentials is berth.RefuseQueryCredential with the token
// endpoint's own hint.
func refuseQueryCredentials(q url.Values) error {
	if err := berth.RefuseQueryCredential(q); err != nil {
		return berth.AsError(err).WithHint("send client credentials as Basic authentication or in a POST form body (client_secret_post), never in the URL; treat this secret as exposed: berth secret add PRINCIPAL, then berth secret remove PRINCIPAL SECRET_ID")
	}
	return nil
}

// echo quotes a parameter value for a message, or describes it when it could
// be a credential sent in the wrong place.
func echo(s string) string {
	if berth.LooksLikeCredential(s) || strings.Count(s, ".") == 2 && len(s) > 64 {
		return "(a value shaped like a credential, not repeated here)"
	}
	return strconv.Quote(berth.Truncate(s, 64))
}

// missing lists which of the named values are empty, for messages.
func missing(values map[string]string) string {
	var names []string
	for _, n := range []string{"client_id", "client_secret", "username", "password"} {
		if v, ok := values[n]; ok && v == "" {
			names = append(names, n)
		}
	}
	return strings.Join(names, " and ") + " missing"
}

// postForm reads the application/x-www-form-urlencoded body of r. Each
// parameter but scope may appear once (RFC 6749 section 3.2).
func postForm(r *http.Request) (url.Values, error) {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		shown := "none"
		if ct != "" {
			shown = strconv.Quote(berth.Truncate(ct, 60))
		}
		return nil, berth.Errorf(berth.CodeInvalid, "a POST to the token endpoint carries an application/x-www-form-urlencoded body; this one has content type %s", shown).
			WithHint("send the parameters as a form: Content-Type: application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, berth.Errorf(berth.CodeTooLarge, "the form body is larger than %d KiB", maxTokenRequestSize>>10)
		}
		return nil, berth.Errorf(berth.CodeInvalid, "the form body is not valid application/x-www-form-urlencoded").
			WithHint("percent-encode the parameter values")
	}
	f := r.PostForm
	for _, name := range []string{"grant_type", "client_id", "client_secret", "username", "password", "refresh_token", "access_type", "service",
		"client_assertion", "client_assertion_type", "connection", "subject_token", "subject_token_type", "requested_token_type", "actor_token"} {
		if n := len(f[name]); n > 1 {
			return nil, berth.Errorf(berth.CodeInvalid, "the parameter %s is given %d times; RFC 6749 section 3.2 allows each parameter once", name, n)
		}
	}
	return f, nil
}

// basicCredentials returns the Basic credentials of r; present is false when
// r has no Authorization header. Another scheme, or Basic that does not
// decode, is credentials_missing: the token endpoint takes client credentials,
// not a bearer token.
func basicCredentials(r *http.Request) (user, secret string, present bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false, nil
	}
	scheme, _, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", true, berth.Errorf(berth.CodeCredentialsMissing, "the token endpoint takes Basic client credentials, not the Authorization scheme %q", berth.Truncate(scheme, 20)).
			WithHint("send CLIENT_ID:SECRET as Basic credentials (docker login HOST -u CLIENT_ID --password-stdin)")
	}
	user, secret, ok := r.BasicAuth()
	if !ok {
		return "", "", true, berth.Errorf(berth.CodeCredentialsMissing, "the Basic credentials are not base64 of CLIENT_ID:SECRET").
			WithHint("docker login HOST -u CLIENT_ID --password-stdin")
	}
	return user, secret, true, nil
}

// clientCredentials returns the client id and secret of a POST: from the
// Basic header (client_secret_basic, whose parts RFC 6749 section 2.3.1
// form-encodes) or from the client_id and client_secret form fields
// (client_secret_post). Both at once is invalid, neither credentials_missing.
func clientCredentials(r *http.Request, f url.Values) (user, secret string, err error) {
	user, secret, present, err := basicCredentials(r)
	if err != nil {
		return "", "", err
	}
	if present {
		if f.Has("client_secret") {
			return "", "", berth.Errorf(berth.CodeInvalid, "the request authenticates the client twice, with Basic credentials and with client_secret in the body; RFC 6749 section 2.3 allows one method").
				WithHint("send either the Authorization: Basic header or client_id and client_secret in the body")
		}
		if u, err := url.QueryUnescape(user); err == nil {
			user = u
		}
		if s, err := url.QueryUnescape(secret); err == nil {
			secret = s
		}
		return user, secret, nil
	}
	user, secret = f.Get("client_id"), f.Get("client_secret")
	if user == "" || secret == "" {
		return "", "", berth.Errorf(berth.CodeCredentialsMissing, "the client_credentials grant needs the client's id and secret; %s", missing(map[string]string{"client_id": user, "client_secret": secret})).
			WithHint("send CLIENT_ID:SECRET as Basic credentials, or client_id and client_secret in the form body")
	}
	return user, secret, nil
}

func expiresIn(c berth.AccessClaims) int { return int(c.Expires.Sub(c.IssuedAt) / time.Second) }

// oauthError gives an error the OAuth 2.0 error name it is rendered with,
// where the reason code alone does not decide it: a refused refresh token is
// invalid_grant even when the reason is its principal's (principal_disabled),
// since the client did not authenticate, and an unknown grant type is
// unsupported_grant_type. status is the HTTP status; 400 when zero.
type oauthError struct {
	name   string
	status int
	err    error
}

func (e *oauthError) Error() string { return e.err.Error() }
func (e *oauthError) Unwrap() error { return e.err }

// errorBody is the error response: RFC 6749 section 5.2 (error,
// error_description, error_uri), berth's reason, hint and request id, error_codes as
// other identity providers name them, and the distribution-spec errors array,
// which Docker clients print.
type errorBody struct {
	Error       string       `json:"error"`
	Description string       `json:"error_description"`
	Reason      berth.Code   `json:"reason"`
	ErrorCodes  []berth.Code `json:"error_codes"`
	Hint        string       `json:"hint,omitempty"`
	RequestID   string       `json:"request_id,omitempty"`
	// ErrorURI is RFC 6749's error_uri: the page explaining the reason,
	// when the registry's public URL is set (berth.ExplainURL).
	ErrorURI string       `json:"error_uri,omitempty"`
	Errors   []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail"`
}

// clientAuthCodes are the reasons a client authentication fails for.
var clientAuthCodes = map[berth.Code]bool{
	berth.CodeCredentialsMissing: true,
	berth.CodeClientUnknown:      true,
	berth.CodeSecretInvalid:      true,
	berth.CodeSecretIDSent:       true,
	berth.CodeSecretExpired:      true,
	berth.CodeSecretRevoked:      true,
	berth.CodePrincipalDisabled:  true,
}

// errorStatus returns the HTTP status and the OAuth 2.0 error name err is
// rendered with.
func errorStatus(err error, code berth.Code) (int, string) {
	switch code {
	case berth.CodeInternal:
		return http.StatusInternalServerError, "server_error"
	case berth.CodeTooManyAttempts:
		return http.StatusTooManyRequests, "temporarily_unavailable"
	}
	if oe, ok := errors.AsType[*oauthError](err); ok {
		if oe.status != 0 {
			return oe.status, oe.name
		}
		return http.StatusBadRequest, oe.name
	}
	switch code {
	case berth.CodeDeviceCodePending: // RFC 8628 section 3.5
		if e := berth.AsError(err); e != nil && e.Detail["slow_down"] == true {
			return http.StatusBadRequest, "slow_down"
		}
		return http.StatusBadRequest, "authorization_pending"
	case berth.CodeDeviceCodeExpired:
		return http.StatusBadRequest, "expired_token"
	case berth.CodeDeviceCodeDenied:
		return http.StatusBadRequest, "access_denied"
	case berth.CodeSessionEnded:
		return http.StatusBadRequest, "invalid_grant"
	}
	switch {
	case clientAuthCodes[code]:
		return http.StatusUnauthorized, "invalid_client"
	case code == berth.CodeRefreshTokenInvalid:
		return http.StatusBadRequest, "invalid_grant"
	case code == berth.CodeRoleMissing:
		return http.StatusForbidden, "invalid_scope"
	case code == berth.CodeInvalid:
		return http.StatusBadRequest, "invalid_request"
	}
	status := berth.LookupCode(code).Status
	switch {
	case status >= 500:
		return status, "server_error"
	case status == http.StatusUnauthorized:
		return status, "invalid_client"
	}
	return status, "invalid_request"
}

// writeError renders every refusal of the token endpoint (see WriteError).
func (h *TokenHandler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, err, h.Provider.URL, h.logger())
}

// WriteError renders a refusal of an OAuth 2.0 endpoint (the token endpoint,
// the device authorization endpoint) as errorBody, with the status and
// error name errorStatus gives it. A *berth.Error keeps its code, facts and
// hint; anything else is logged to log with the request id and shown only
// as "internal error (request id X)". publicURL is the registry's
// configured public URL, for error_uri.
func WriteError(w http.ResponseWriter, r *http.Request, err error, publicURL string, log *slog.Logger) {
	ctx := r.Context()
	reqID := berth.RequestID(ctx)
	e := berth.AsError(err)
	if e == nil {
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", berth.RedactCredential(r.URL.Path)), slog.Any("err", err)}
		if reqID == "" {
			// Served without the server's middleware: make an id, so the
			// answer and the log line still meet.
			reqID = rand.Text()
			attrs = append(attrs, slog.String("request_id", reqID))
		}
		log.LogAttrs(ctx, slog.LevelError, "OAuth endpoint: internal error", attrs...)
		e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", reqID)
	}
	status, name := errorStatus(err, e.Code)
	if e.Code != berth.CodeInternal {
		log.LogAttrs(ctx, slog.LevelInfo, "OAuth request refused", slog.String("path", berth.RedactCredential(r.URL.Path)),
			slog.String("method", r.Method), slog.String("reason", string(e.Code)), slog.Int("status", status),
			slog.String("message", e.Message), slog.String("source", SourceAddress(r)))
	}

	hdr := w.Header()
	if status == http.StatusUnauthorized {
		hdr.Set("WWW-Authenticate", basicRealm)
	}
	if retry, ok := e.Detail["retry_after"]; ok {
		hdr.Set("Retry-After", fmt.Sprint(retry))
	}
	detail := e.Details(reqID, publicURL)
	body := errorBody{
		Error:       name,
		Description: e.Message,
		Reason:      e.Code,
		ErrorCodes:  []berth.Code{e.Code},
		Hint:        e.Hint,
		RequestID:   reqID,
		ErrorURI:    berth.ExplainURL(publicURL, e.Code),
		// Docker prints code and message only: the message carries the
		// reason and the hint too, so that "docker login" shows them.
		Errors: []errorEntry{{Code: berth.LookupCode(e.Code).OCI, Message: e.Error(), Detail: detail}},
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// logIssued records an issued token at Debug level: who, how, and what it
// grants; never a token.
func (h *TokenHandler) logIssued(r *http.Request, grant string, out issued) {
	h.auditIssued(r, grant, out)
	log := h.logger()
	if !log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	scopes := make([]string, len(out.granted))
	for i, ra := range out.granted {
		scopes[i] = ra.String()
	}
	attrs := []slog.Attr{slog.String("grant", grant), slog.String("principal", out.caller.Actor.Name),
		slog.String("credential_id", out.caller.CredentialID), slog.String("scope", strings.Join(scopes, " ")),
		slog.Bool("refresh_token", !out.refresh.IsZero())}
	if c := out.caller; c.Connection != "" {
		attrs = append(attrs, slog.String("connection", c.Connection), slog.String("pipeline", c.Pipeline), slog.String("ci_run", c.Run))
	}
	log.LogAttrs(r.Context(), slog.LevelDebug, "token issued", attrs...)
}

// auditIssued records an issued token: who, by which grant, asking what and
// granted what.
func (h *TokenHandler) auditIssued(r *http.Request, grant string, out issued) {
	if h.Audit == nil {
		return
	}
	scopes := make([]string, len(out.granted))
	for i, ra := range out.granted {
		scopes[i] = ra.String()
	}
	target := ""
	if len(out.granted) > 0 {
		target = out.granted[0].Name
	}
	// The caller's connection, pipeline and CI run come with it.
	e := berth.NewAuditEvent(berth.WithCaller(r.Context(), out.caller), berth.AuditAuthToken, target, nil)
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail["grant_type"] = grant
	e.Detail["granted"] = strings.Join(scopes, " ")
	e.Detail["refresh_token"] = strconv.FormatBool(!out.refresh.IsZero())
	h.Audit.Record(e)
}

// auditRefused records a refused token request with the client id it
// claimed, never what looks like a secret. A federated request is recorded
// with the connection it named and the pipeline its token matched, when it
// got that far; a pipeline_not_authorized refusal also records the
// permission request it left (berth.AuditPermissionRequested).
func (h *TokenHandler) auditRefused(r *http.Request, err error) {
	if h.Audit == nil {
		return
	}
	user, _, ok := r.BasicAuth()
	if !ok && r.PostForm != nil {
		// The password grant's client_id names the client program (oras
		// sends "oras-go"), its username the principal.
		user = r.PostForm.Get("client_id")
		if u := r.PostForm.Get("username"); u != "" && (user == "" || r.PostForm.Get("grant_type") == "password") {
			user = u
		}
	}
	e := berth.NewAuditEvent(r.Context(), berth.AuditAuthToken, "", err)
	e.Actor = berth.AuditClientID(user)
	if conn, ok := federatedConnection(r); ok {
		e.Actor, e.Connection = "", conn // client_id named the connection, not a principal
	}
	if be := berth.AsError(err); be != nil {
		// A refusal past authentication (role_missing, scope_not_granted)
		// names its principal: the event is theirs, so that berth audit
		// --principal NAME finds it; the client id it was asked with stays
		// in the detail.
		if v, ok := be.Detail["principal"].(string); ok && e.Connection == "" && berth.ValidatePrincipalName(v) == nil && v != e.Actor {
			if e.Actor != "" {
				if e.Detail == nil {
					e.Detail = map[string]string{}
				}
				e.Detail["client_id"] = e.Actor
			}
			e.Actor = v
		}
		if v, ok := be.Detail["connection"].(string); ok && e.Connection == "" && berth.ValidateConnectionName(v) == nil {
			e.Connection = v
		}
		if v, ok := be.Detail["pipeline"].(string); ok {
			e.Pipeline = v
		} else if v, ok := be.Private["pipeline"]; ok {
			e.Pipeline = v
		}
	}
	grant := "docker"
	if r.Method == http.MethodPost && r.PostForm != nil {
		grant = r.PostForm.Get("grant_type")
	}
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail["grant_type"] = grant
	h.Audit.Record(e)
	if berth.IsCode(err, berth.CodePipelineNotAuthorized) && e.Connection != "" {
		pe := berth.NewAuditEvent(r.Context(), berth.AuditPermissionRequested, e.Connection, err)
		pe.Connection, pe.Pipeline = e.Connection, e.Pipeline
		h.Audit.Record(pe)
	}
}

func (h *TokenHandler) logger() *slog.Logger {
	switch {
	case h.Logger != nil:
		return h.Logger
	case h.Provider.Logger != nil:
		return h.Provider.Logger
	}
	return slog.Default()
}
