package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// Cookie names. The session cookie is what the console (and every page
// here) recognises a signed-in person by; the flow cookie carries one
// sign-in's state, nonce and PKCE verifier from /login/NAME to the callback.
const (
	SessionCookie = "berth_session"
	flowCookie    = "berth_signin"
	// flowLifetime bounds a sign-in from its start to the callback.
	flowLifetime = 10 * time.Minute
)

// CallbackPath is the redirect URI to register at the provider:
// URL/login/callback.
const CallbackPath = "/login/callback"

// Authenticator resolves a session cookie's value to the caller it acts as,
// with the rules of every other credential: the oauth Provider's
// AuthenticateSession.
type Authenticator func(ctx context.Context, cookieValue string) (*berth.Caller, error)

// Handler serves the sign-in pages and the device authorization endpoint.
type Handler struct {
	*Service
	Authenticate Authenticator
}

// Routes registers the handler's patterns on mux.
func (h *Handler) Routes(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET /login", http.HandlerFunc(h.loginPage))
	mux.Handle("GET /login/{idp}", http.HandlerFunc(h.start))
	mux.Handle("GET "+CallbackPath, http.HandlerFunc(h.callback))
	mux.Handle("GET /logout", http.HandlerFunc(h.logoutPage))
	mux.Handle("POST /logout", http.HandlerFunc(h.logout))
	mux.Handle("GET /device", http.HandlerFunc(h.devicePage))
	mux.Handle("POST /device", http.HandlerFunc(h.deviceDecide))
	mux.Handle("POST "+oauth.DeviceAuthorizationPath, http.HandlerFunc(h.deviceAuthorization))
}

// baseURL is the registry's public URL, or the one the request came to.
func (h *Handler) baseURL(r *http.Request) string {
	if h.URL != "" {
		return strings.TrimSuffix(h.URL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Service) secure(r *http.Request) bool { return Secure(r, s.URL) }

// Secure reports whether r reached the registry over https: TLS here, or a
// public URL (url:) of https behind a proxy that ends TLS. Cookies are then
// Secure and __Host- prefixed (CookieName).
func Secure(r *http.Request, publicURL string) bool {
	return r.TLS != nil || strings.HasPrefix(publicURL, "https://")
}

// fail renders err as the error page, with its status from the code table;
// anything that is not a *berth.Error is logged and shown as internal.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := berth.AsError(err)
	reqID := berth.RequestID(r.Context())
	if e == nil {
		h.logger().ErrorContext(r.Context(), "sign-in: internal error", slog.String("path", r.URL.Path), slog.Any("err", err))
		e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", reqID)
	}
	render(w, berth.LookupCode(e.Code).Status, "error", map[string]any{"Message": e.Message, "Hint": e.Hint, "Code": e.Code, "RequestID": reqID})
}

// who returns the caller of the request's session cookie, or nil when it
// carries none that is live.
func (h *Handler) who(r *http.Request) (*berth.Caller, string) {
	c, err := h.SessionCookieOf(r)
	if err != nil || c.Value == "" || h.Authenticate == nil {
		return nil, ""
	}
	caller, err := h.Authenticate(r.Context(), c.Value)
	if err != nil || caller.Anonymous() {
		return nil, ""
	}
	return caller, c.Value
}

// LocalNext returns next when it is a path on this server, else "": never
// "//host" nor "/\\host", and no control character, which browsers drop
// ("/\t/host" would become "//host"). Every redirect to a page the client
// named goes through it.
func LocalNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f {
			return ""
		}
	}
	return next
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	ps, err := h.Store.FindIdentityProviders(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := map[string]any{"Providers": ps, "Next": LocalNext(r.URL.Query().Get("next"))}
	if c, value := h.who(r); c != nil {
		data["Who"], data["CSRF"] = c.Actor.Name, berth.SessionCSRF(value)
	}
	render(w, http.StatusOK, "login", data)
}

// flow is one sign-in in progress, held by the browser in the flow cookie
// (HttpOnly, SameSite=Lax): the callback accepts only the state of the
// browser that started it.
type flow struct {
	IdP      string `json:"idp"`
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Next     string `json:"next,omitempty"`
	Expires  int64  `json:"exp"`
}

// start begins a sign-in through the provider named in the path: a fresh
// state, nonce and PKCE verifier, kept in the flow cookie, and a redirect to
// the provider's authorization endpoint.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("idp")
	p, err := h.Store.FindIdentityProviderByName(ctx, name)
	if berth.IsCode(err, berth.CodeNotFound) {
		err = berth.IdPUnknown(name)
		h.audit(berth.NewAuditEvent(ctx, berth.AuditAuthSignIn, berth.Truncate(name, 64), err))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := flow{IdP: p.Name, State: rand.Text(), Nonce: rand.Text(), Verifier: rand.Text() + rand.Text(),
		Next: LocalNext(r.URL.Query().Get("next")), Expires: h.now().Add(flowLifetime).Unix()}
	u, err := h.RP.AuthCodeURL(ctx, p, h.baseURL(r)+CallbackPath, f.State, f.Nonce, f.Verifier)
	if err != nil {
		h.audit(berth.NewAuditEvent(ctx, berth.AuditAuthSignIn, p.Name, err))
		h.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(r, flowCookie), Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: int(flowLifetime / time.Second), HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// readFlow returns the sign-in the browser started, or signin_state_invalid.
func (h *Handler) readFlow(r *http.Request) (flow, error) {
	stale := berth.Errorf(berth.CodeSignInStateInvalid, "this browser has no sign-in in progress: it was started in another browser, finished already, or is older than %d minutes", int(flowLifetime/time.Minute)).
		WithHint("start again at /login, in one browser with cookies allowed for this site")
	c, err := r.Cookie(h.cookieName(r, flowCookie))
	if err != nil {
		return flow{}, stale
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	var f flow
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" {
		return flow{}, stale
	}
	if h.now().Unix() > f.Expires {
		return flow{}, stale
	}
	return f, nil
}

// callback finishes a sign-in (RFC 6749 section 4.1.2): the state must be
// the one this browser's flow cookie holds; the code is redeemed with the
// PKCE verifier; the ID token's nonce must match. Then the person is signed
// in (created at the first sign-in) and the session cookie set.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	f, err := h.readFlow(r)
	// The flow cookie is used once, whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(r, flowCookie), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	if err == nil && subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		err = berth.Errorf(berth.CodeSignInStateInvalid, "the sign-in's state does not match the one this browser started: the answer was forged or belongs to another sign-in").
			WithHint("start again at /login")
	}
	var p berth.IdentityProvider
	if err == nil {
		p, err = h.Store.FindIdentityProviderByName(ctx, f.IdP)
		if berth.IsCode(err, berth.CodeNotFound) {
			err = berth.IdPUnknown(f.IdP)
		}
	}
	if err == nil && q.Get("error") != "" {
		err = refused(p, "it answered %s: %s", berth.Truncate(q.Get("error"), 64), berth.Truncate(q.Get("error_description"), 200)).
			WithDetail("idp_error", berth.Truncate(q.Get("error"), 64))
	}
	var id Identity
	if err == nil {
		var secret string
		if secret, err = h.clientSecret(p); err == nil {
			id, err = h.RP.Exchange(ctx, p, secret, h.baseURL(r)+CallbackPath, q.Get("code"), f.Verifier, f.Nonce)
		}
	}
	var who person
	if err == nil {
		who, err = h.signIn(ctx, p, id)
	}
	var value string
	if err == nil {
		value, err = h.newSession(ctx, who, p)
	}
	ev := berth.NewAuditEvent(ctx, berth.AuditAuthSignIn, f.IdP, err)
	if err == nil {
		ev.Actor, ev.ActorID = who.principal.Name, who.principal.ID
	}
	h.audit(ev)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.SetSessionCookie(w, r, value)
	next := LocalNext(f.Next)
	if next == "" {
		next = "/login"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Service) lifetime() time.Duration {
	if s.SessionLifetime > 0 {
		return s.SessionLifetime
	}
	return berth.DefaultUserSessionLifetime
}

// newSession starts a browser session for who and returns its cookie value.
func (h *Handler) newSession(ctx context.Context, who person, p berth.IdentityProvider) (string, error) {
	return h.StartSession(ctx, who.principal.ID, p.ID)
}

// StartSession starts a browser session of the principal, signed in through
// the identity provider providerID (or with a credential: see
// berth.SignInCredentialPrefix), and returns the value of its cookie
// (SessionCookie), which only its hash is stored of. The session lasts
// SessionLifetime and is checked on every use like every other session.
func (s *Service) StartSession(ctx context.Context, principalID, providerID string) (string, error) {
	value, err := berth.NewSessionValue(s.rand())
	if err != nil {
		return "", err
	}
	sess, err := berth.NewUserSession(s.rand(), principalID, providerID, berth.SessionValueHash(value), s.now(), s.lifetime())
	if err != nil {
		return "", err
	}
	return value, s.Store.CreateSession(ctx, sess)
}

// SetSessionCookie sets the session cookie of value on w, as the sign-in
// callback does.
func (s *Service) SetSessionCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r, SessionCookie), Value: value, Path: "/", MaxAge: int(s.lifetime() / time.Second),
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

// SessionCookieOf returns the request's session cookie: the one named for
// how the registry is reached (CookieName), never the other.
func (s *Service) SessionCookieOf(r *http.Request) (*http.Cookie, error) {
	return r.Cookie(s.cookieName(r, SessionCookie))
}

// cookieName is CookieName for the way r reached the registry.
func (s *Service) cookieName(r *http.Request, name string) string {
	return CookieName(s.secure(r), name)
}

// CookieName returns the name a cookie of the sign-in or the console goes
// by: over https, with the __Host- prefix, which a browser accepts only
// when set Secure, with Path=/ and no Domain, by this very host, so that a
// sibling subdomain cannot plant one (a session or sign-in of its choosing:
// login CSRF). Over plain http (loopback) the name is as it is. A cookie is
// read by the one name only.
func CookieName(secure bool, name string) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// CheckCSRF returns signin_state_invalid unless the form's csrf field is the
// one derived from the session cookie value (berth.SessionCSRF).
func CheckCSRF(r *http.Request, cookieValue string) error {
	return checkCSRF(r, cookieValue)
}

// checkCSRF returns signin_state_invalid unless the form's csrf field is the
// one derived from the session cookie value.
func checkCSRF(r *http.Request, cookieValue string) error {
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(berth.SessionCSRF(cookieValue))) != 1 {
		return berth.Errorf(berth.CodeSignInStateInvalid, "the form's csrf field does not belong to this browser's session: it was sent from another site, or from a page older than the session").
			WithHint("reload the page and submit the form again")
	}
	return nil
}

func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	if c, value := h.who(r); c != nil {
		data["Who"], data["CSRF"] = c.Actor.Name, berth.SessionCSRF(value)
	}
	render(w, http.StatusOK, "logout", data)
}

// logout ends the browser's session (a POST with the csrf field, so that no
// other site can sign a person out) and clears its cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := h.SessionCookieOf(r)
	if err != nil {
		render(w, http.StatusOK, "done", map[string]string{"Title": "Signed out", "Text": "This browser holds no session."})
		return
	}
	if err := checkCSRF(r, c.Value); err != nil {
		h.fail(w, r, err)
		return
	}
	sess, err := h.Store.FindSessionByHash(ctx, berth.SessionValueHash(c.Value))
	if err == nil {
		err = h.Store.EndSession(ctx, sess.ID, h.now())
		ev := berth.NewAuditEvent(ctx, berth.AuditAuthSignOut, "", err)
		ev.ActorID = sess.PrincipalID
		h.audit(ev)
	}
	if err != nil && !berth.IsCode(err, berth.CodeNotFound) {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(r, SessionCookie), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	render(w, http.StatusOK, "done", map[string]string{"Title": "Signed out", "Text": "The session has ended."})
}
