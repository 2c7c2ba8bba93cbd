package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/signin"
)

//go:embed assets templates
var files embed.FS

// Sessions is what the console needs of the sign-in: resolving a session
// cookie, and starting a session for the break-glass sign-in.
// *signin.Service is one.
type Sessions interface {
	StartSession(ctx context.Context, principalID, providerID string) (string, error)
	SetSessionCookie(w http.ResponseWriter, r *http.Request, value string)
	// SessionCookieOf returns the request's session cookie, by the name
	// the way the registry is reached gives it (signin.CookieName).
	SessionCookieOf(r *http.Request) (*http.Cookie, error)
}

// Handler serves the console's pages.
type Handler struct {
	// API is the /api/v1 handler; every page reads and changes through it,
	// except content deletes, which go through Registry.
	API http.Handler
	// Registry is the /v2/ handler: deleting a tag or manifest goes through
	// it, under the registry's rules; without one the console deletes none.
	Registry Registry
	// Authenticate resolves a session cookie's value to its caller
	// (oauth.Provider.AuthenticateSession).
	Authenticate signin.Authenticator
	// AuthenticateClient checks a client id and secret, counting failures
	// per source address (oauth.Provider.AuthenticateClient).
	AuthenticateClient func(ctx context.Context, user, secret, source string) (*berth.Caller, error)
	Sessions           Sessions
	// Providers lists the identity providers to sign in with.
	Providers func(ctx context.Context) ([]berth.IdentityProvider, error)
	// URL is the registry's public base URL, for the docker login lines;
	// when empty, the URL each request came to.
	URL string
	// Service is the registry's service name: the audience a pipeline
	// registered without one expects.
	Service string
	Now     func() time.Time
	Logger  *slog.Logger
	Audit   berth.AuditRecorder
	// LastVerification, when set, returns what the server's scheduled
	// verification of every connection last found failing, by connection
	// name, and when it ran (the zero time: not yet). Attention shows it
	// without asking the issuers again.
	LastVerification func() (failing map[string]berth.Check, at time.Time)
}

// Routes registers the console's patterns on mux.
func (h *Handler) Routes(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /assets/{file}", h.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, assets, r.PathValue("file")) // files only: no listing
	})))
	mux.Handle("GET /signin", h.headers(http.HandlerFunc(h.signinPage)))
	mux.Handle("POST /signin", h.headers(http.HandlerFunc(h.signin)))
	mux.Handle("GET /errors", h.headers(http.HandlerFunc(h.errorIndex)))
	mux.Handle("GET /errors/{code}", h.headers(http.HandlerFunc(h.errorPage)))
	mux.Handle("GET /{$}", h.page(h.attention))
	mux.Handle("POST /connections/{name}/permit", h.page(h.permit))
	mux.Handle("GET /why-not", h.page(h.whyNot))
	mux.Handle("GET /audit", h.page(h.audit))
	mux.Handle("GET /access", h.page(h.access))
	h.routeMore(mux)
	h.routeConnections(mux)
	h.routePipelines(mux)
	h.routeRepositories(mux)
	h.routeWebhooks(mux)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// csp allows the console's own files and nothing inline.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// headers sets the security headers every console answer carries.
func (h *Handler) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// session is a signed-in request: its caller, the csrf value of its forms,
// and a client of the API acting as the caller.
type session struct {
	caller *berth.Caller
	csrf   string
	api    *client.Client
	owner  bool
}

// view is what the layout renders.
type view struct {
	Title string
	Who   string
	CSRF  string
	Owner bool
	Data  any
	// Page names the template when it is not the title's.
	Page string
	// NoStore marks a page that shows a secret value.
	NoStore bool
}

// pageFunc answers one signed-in request: a view to render, or an error
// rendered as the refusal page.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) (*view, error)

// page wraps fn with the security headers, the session (a request without
// one is sent to /signin), the csrf check of every POST, and rendering.
func (h *Handler) page(fn pageFunc) http.Handler {
	return h.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.sessionCookie(r)
		var caller *berth.Caller
		if err == nil && c.Value != "" {
			caller, err = h.Authenticate(r.Context(), c.Value)
		}
		if err != nil || caller == nil || caller.Anonymous() {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			if err == nil || berth.AsError(err) == nil {
				err = berth.Errorf(berth.CodeSessionEnded, "this browser holds no session of this registry").WithHint("sign in again at /signin")
			}
			h.fail(w, r, nil, err)
			return
		}
		s := &session{caller: caller, csrf: berth.SessionCSRF(c.Value)}
		s.api = client.New("http://console.invalid", "", "", &http.Client{Transport: inProcess{api: h.API, caller: caller}})
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := signin.CheckCSRF(r, c.Value); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
		// Owner on the registry sees the administration: the API's own
		// rule decides (listing every principal's expiring secrets is
		// owner-only), never a copy of it.
		_, oerr := s.api.ListExpiringSecrets(r.Context(), "1h", caller.Actor.Name)
		s.owner = oerr == nil
		v, err := fn(w, r, s)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		if v == nil {
			return // answered already (a redirect)
		}
		v.Who, v.CSRF, v.Owner = caller.Actor.Name, s.csrf, s.owner
		h.render(w, http.StatusOK, v)
	}))
}

// inProcess sends the API client's requests to the API handler directly,
// as the session's caller.
type inProcess struct {
	api    http.Handler
	caller *berth.Caller
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(api.WithAuthenticated(req.Context(), t.caller))
	req.Header.Del("Authorization")
	req.RemoteAddr = "console"
	if req.Body == nil {
		req.Body = http.NoBody // a server's handler may read it; a client's request may lack it
	}
	rec := newRecorder()
	t.api.ServeHTTP(rec, req)
	return rec.response(req), nil
}

// fail renders err as the refusal page, with its status from the code table;
// anything that is not a *berth.Error is logged and shown as internal.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	e := berth.AsError(err)
	reqID := berth.RequestID(r.Context())
	if e == nil {
		h.logger().ErrorContext(r.Context(), "console: internal error", slog.String("path", r.URL.Path), slog.Any("err", err))
		e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", reqID)
	}
	if id, ok := e.Detail["request_id"].(string); ok && reqID == "" {
		reqID = id
	}
	v := &view{Title: "Refused", Data: refusal{Code: e.Code, Message: e.Message, Hint: e.Hint, RequestID: reqID}}
	if s != nil {
		v.Who, v.CSRF, v.Owner = s.caller.Actor.Name, s.csrf, s.owner
	}
	h.render(w, berth.LookupCode(e.Code).Status, v, "error")
}

type refusal struct {
	Code      berth.Code
	Message   string
	Hint      string
	RequestID string
}

func refusalOf(err error) *refusal {
	e := berth.AsError(err)
	if e == nil {
		return nil
	}
	return &refusal{Code: e.Code, Message: e.Message, Hint: e.Hint}
}

// render writes v with the page template named after its title (or name).
func (h *Handler) render(w http.ResponseWriter, status int, v *view, name ...string) {
	n := v.Page
	if n == "" {
		n = pageNames[v.Title]
	}
	if len(name) > 0 {
		n = name[0]
	}
	t, ok := pages[n]
	if !ok {
		t = pages["error"]
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	if v.NoStore {
		hd.Set("Cache-Control", "no-store")
	} else if hd.Get("Cache-Control") == "" {
		hd.Set("Cache-Control", "private, no-cache")
	}
	// The page is rendered whole before anything is sent: a template that
	// fails halfway is an internal error, not a page cut short with 200.
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		h.logger().Error("console: render", slog.String("page", n), slog.Any("err", err))
		b.Reset()
		status = http.StatusInternalServerError
		failed := &view{Title: "Refused", Data: refusal{Code: berth.CodeInternal, Message: "internal error: this page could not be shown"}}
		if err := pages["error"].ExecuteTemplate(&b, "layout", failed); err != nil {
			b.Reset()
			b.WriteString("internal error")
		}
	}
	w.WriteHeader(status)
	_, _ = b.WriteTo(w)
}

// pageNames maps a view's title to its template.
var pageNames = map[string]string{
	"Attention": "attention", "Sign in": "signin", "Why not?": "whynot", "Reason codes": "errors",
	"Principals": "principals", "Connections": "connections", "Audit": "audit", "Pipelines": "pipelines", "Repositories": "repositories", "Webhooks": "webhooks", "Access": "access",
}

var pages = map[string]*template.Template{}

func init() {
	funcs := template.FuncMap{"md": md, "date": date, "bytes": berth.FormatBytes, "kind": manifestKind,
		"short": func(d any) string { return berth.Digest(fmt.Sprint(d)).Short() }}
	layout := template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	entries, _ := fs.Glob(files, "templates/*.html")
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimPrefix(e, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(files, e))
	}
}

// md renders a code table sentence: `backquoted` parts as code, the rest as
// text.
func md(s string) template.HTML {
	var b strings.Builder
	for i, part := range strings.Split(s, "`") {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(part) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(part))
		}
	}
	return template.HTML(b.String())
}

// manifestKind names what a manifest holds for people: "image index",
// "image", or the artifact type of anything else (a signature, an SBOM, a
// Helm chart); the media type when it says nothing more.
func manifestKind(mediaType, artifactType string) string {
	switch {
	case mediaType == "application/vnd.oci.image.index.v1+json" || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json":
		return "image index"
	case artifactType == "" || artifactType == "application/vnd.oci.image.config.v1+json" || artifactType == "application/vnd.docker.container.image.v1+json":
		if mediaType == "application/vnd.oci.image.manifest.v1+json" || mediaType == "application/vnd.docker.distribution.manifest.v2+json" {
			return "image"
		}
		return mediaType
	}
	return artifactType
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (h *Handler) errorIndex(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, &view{Title: "Reason codes", Data: berth.Codes})
}

// errorPage explains one reason code, as berth explain does.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request) {
	code := berth.Code(r.PathValue("code"))
	for _, info := range berth.Codes {
		if info.Code == code {
			h.render(w, http.StatusOK, &view{Title: "Reason code " + string(code), Data: info}, "errorcode")
			return
		}
	}
	h.fail(w, r, nil, berth.Errorf(berth.CodeNotFound, "berth has no reason code %q", berth.Truncate(string(code), 64)).WithHint("every code is listed at /errors, or: berth explain CODE"))
}

// loginCookie carries the break-glass form's csrf value before there is a
// session (double submit: another site can neither read nor set it; over
// https a sibling subdomain cannot either, signin.CookieName).
const loginCookie = "berth_console_signin"

// secure reports whether the registry is reached over https.
func (h *Handler) secure(r *http.Request) bool { return signin.Secure(r, h.URL) }

// sessionCookie returns the request's session cookie.
func (h *Handler) sessionCookie(r *http.Request) (*http.Cookie, error) {
	if h.Sessions == nil {
		return r.Cookie(signin.CookieName(h.secure(r), signin.SessionCookie))
	}
	return h.Sessions.SessionCookieOf(r)
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	var ps []berth.IdentityProvider
	if h.Providers != nil {
		var err error
		if ps, err = h.Providers(r.Context()); err != nil {
			h.fail(w, r, nil, err)
			return
		}
	}
	token := berth.SessionCSRF(rand.Text()) // hex, like the session forms' values
	http.SetCookie(w, &http.Cookie{Name: signin.CookieName(h.secure(r), loginCookie), Value: token, Path: "/", MaxAge: 600, HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteStrictMode})
	h.render(w, http.StatusOK, &view{Title: "Sign in", NoStore: true, Data: map[string]any{"Providers": ps, "Next": signin.LocalNext(r.URL.Query().Get("next")), "CSRF": token}})
}

// signin is the break-glass sign-in: a client id and secret, checked as the
// token endpoint checks them (failures counted per address), start a session
// like an identity provider's sign-in does, which ends when the secret is
// removed or expires. Personal access tokens are refused.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, cerr := r.Cookie(signin.CookieName(h.secure(r), loginCookie))
	if cerr != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.fail(w, r, nil, berth.Errorf(berth.CodeSignInStateInvalid, "the sign-in form was not sent from this browser's sign-in page").
			WithHint("open /signin and submit the form again"))
		return
	}
	caller, err := h.AuthenticateClient(ctx, r.PostFormValue("client_id"), r.PostFormValue("client_secret"), oauth.SourceAddress(r))
	if err == nil && caller.Limit != nil {
		// A personal access token is narrower than its person: a console
		// session would act with all their roles.
		err = berth.Errorf(berth.CodeInvalid, "a personal access token cannot sign in to the console: it is limited to what it was created for").
			WithHint("sign in through your identity provider at /signin")
	}
	var value string
	if err == nil {
		// The session lives only as long as the secret it was signed in with.
		value, err = h.Sessions.StartSession(ctx, caller.Actor.ID, berth.SignInCredentialPrefix+caller.CredentialID)
	}
	ev := berth.NewAuditEvent(ctx, berth.AuditAuthSignIn, "client-secret", err)
	if err == nil {
		ev.Actor, ev.ActorID = caller.Actor.Name, caller.Actor.ID
	}
	if h.Audit != nil {
		h.Audit.Record(ev)
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signin.CookieName(h.secure(r), loginCookie), Value: "", Path: "/", MaxAge: -1, Secure: h.secure(r)})
	h.Sessions.SetSessionCookie(w, r, value)
	next := signin.LocalNext(r.PostFormValue("next"))
	if next == "" {
		next = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}
