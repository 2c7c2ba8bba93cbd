package api

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Sealer seals small secrets under the key encryption key (*oauth.Sealer).
type Sealer interface {
	Seal(plain, aad []byte) ([]byte, error)
}

// IdP is an identity provider as the API shows it: never its client secret.
type IdP struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Issuer        string    `json:"issuer"`
	ClientID      string    `json:"client_id"`
	GroupsClaim   string    `json:"groups_claim"`
	UsernameClaim string    `json:"username_claim"`
	Scopes        []string  `json:"scopes"`
	Created       time.Time `json:"created_at"`
	// RedirectURI is what to register at the provider as the application's
	// redirect URI: this registry's /login/callback.
	RedirectURI string `json:"redirect_uri"`
	// SignInURL starts a sign-in through the provider.
	SignInURL string `json:"sign_in_url"`
}

// IdPRequest is the body of POST /api/v1/idps.
type IdPRequest struct {
	Name          string   `json:"name"`
	Issuer        string   `json:"issuer"`
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	GroupsClaim   string   `json:"groups_claim,omitempty"`
	UsernameClaim string   `json:"username_claim,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
}

// IdPList is the answer of GET /api/v1/idps.
type IdPList struct {
	IdPs []IdP `json:"idps"`
}

func (h *handler) routeIdPs() {
	h.handle("POST /api/v1/idps", h.addIdP)
	h.handle("GET /api/v1/idps", h.listIdPs)
	h.handle("GET /api/v1/idps/{name}", h.showIdP)
	h.handle("DELETE /api/v1/idps/{name}", h.removeIdP)
}

// idpView describes p, with the redirect URI to register at the provider:
// under the registry's public URL (Config.URL), which sign-in sends, else
// as this request reached the server.
func (h *handler) idpView(r *http.Request, p berth.IdentityProvider) IdP {
	base := strings.TrimSuffix(h.cfg.URL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return IdP{ID: p.ID, Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID, GroupsClaim: p.GroupsClaim,
		UsernameClaim: p.UsernameClaim, Scopes: p.Scopes, Created: p.Created,
		RedirectURI: base + "/login/callback", SignInURL: base + "/login/" + p.Name}
}

// addIdP adds an identity provider people sign in through.
//
// POST /api/v1/idps {"name", "issuer", "client_id", "client_secret",
// "groups_claim", "username_claim", "scopes"} → 201 with the provider,
// never its secret, which is stored sealed by the key encryption key. Needs
// owner on registry. conflict when the name is taken.
func (h *handler) addIdP(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "adding an identity provider"); err != nil {
		return err
	}
	var req IdPRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	p, err := berth.NewIdentityProvider(h.rand, berth.IdentityProvider{Name: req.Name, Issuer: req.Issuer, ClientID: req.ClientID,
		GroupsClaim: req.GroupsClaim, UsernameClaim: req.UsernameClaim, Scopes: req.Scopes}, h.cfg.Outbound, h.now())
	if err != nil {
		return err
	}
	secret := strings.TrimSpace(req.ClientSecret)
	if secret == "" {
		return berth.Errorf(berth.CodeInvalid, "identity provider %s needs the client secret the provider issued to berth's application", p.Name).
			WithHint("berth idp add %s --issuer %s --client-id %s --client-secret-stdin < secret-file", p.Name, p.Issuer, p.ClientID)
	}
	if h.cfg.Sealer == nil {
		return berth.Errorf(berth.CodeUnsupported, "this server has no key to seal client secrets with").
			WithHint("set key_encryption_key in the configuration file (base64 of 32 random bytes: openssl rand -base64 32)")
	}
	if p.SealedSecret, err = h.cfg.Sealer.Seal([]byte(secret), berth.IdPSecretAAD(p.ID)); err != nil {
		return err
	}
	if err := h.cfg.Store.CreateIdentityProvider(ctx, p); err != nil {
		return err
	}
	h.changed(r, c, "identity provider added", slog.String("principal", p.Name), slog.String("issuer", p.Issuer))
	return writeJSON(w, http.StatusCreated, h.idpView(r, p))
}

// listIdPs lists the identity providers. GET /api/v1/idps; needs owner on
// registry.
func (h *handler) listIdPs(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing identity providers"); err != nil {
		return err
	}
	ps, err := h.cfg.Store.FindIdentityProviders(ctx)
	if err != nil {
		return err
	}
	out := IdPList{IdPs: make([]IdP, 0, len(ps))}
	for _, p := range ps {
		out.IdPs = append(out.IdPs, h.idpView(r, p))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *handler) idpByName(r *http.Request) (berth.IdentityProvider, error) {
	name := r.PathValue("name")
	p, err := h.cfg.Store.FindIdentityProviderByName(r.Context(), name)
	if berth.IsCode(err, berth.CodeNotFound) {
		return p, berth.IdPUnknown(name)
	}
	return p, err
}

// showIdP shows one. GET /api/v1/idps/{name}; needs owner on registry;
// idp_unknown when none has the name.
func (h *handler) showIdP(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "showing an identity provider"); err != nil {
		return err
	}
	p, err := h.idpByName(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.idpView(r, p))
}

// removeIdP removes a provider, with its people's links and sessions: no
// one signs in through it any more, and every session it started ends. The
// people's principals stay (berth principal list --kind user).
//
// DELETE /api/v1/idps/{name} → 200 with the provider as it was.
func (h *handler) removeIdP(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "removing an identity provider"); err != nil {
		return err
	}
	p, err := h.idpByName(r)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteIdentityProvider(ctx, p.ID); err != nil {
		return err
	}
	h.changed(r, c, "identity provider removed", slog.String("principal", p.Name))
	return writeJSON(w, http.StatusOK, h.idpView(r, p))
}
