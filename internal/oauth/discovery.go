package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Paths of the endpoints the discovery document names.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	TokenPath     = "/oauth2/token"
	JWKSPath      = "/oauth2/jwks"
)

// Discovery serves the OpenID Connect discovery document
// (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig,
// RFC 8414) at DiscoveryPath and the keyring's JWKS (RFC 7517) at JWKSPath.
// It lists only what berth supports; whoever adds a grant type or a client
// authentication method adds it here.
type Discovery struct {
	doc  []byte
	keys *Keyring
}

// discoveryDocument is the provider metadata. authorization_endpoint, which
// OpenID Connect asks for, is absent: berth has no interactive flow yet.
type discoveryDocument struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	// RevocationEndpoint is RFC 7009 token revocation, for refresh tokens
	// (RFC 8414 section 2).
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// TokenEndpointAuthSigningAlgs are the algorithms of the CI ID tokens
	// accepted as client assertions (RFC 8414 section 2).
	TokenEndpointAuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	// ClientAssertionTypes and SubjectTokenTypes are berth's own: the client
	// assertion type (RFC 7523 section 2.2) and the subject token types of a
	// token exchange (RFC 8693 section 3) it accepts, both for CI ID tokens.
	ClientAssertionTypes             []string `json:"client_assertion_types_supported"`
	SubjectTokenTypes                []string `json:"subject_token_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	// DeviceAuthorizationEndpoint is RFC 8628 section 4's, when people
	// sign in.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
}

// DiscoveryOption adds to the discovery document.
type DiscoveryOption func(*discoveryDocument)

// WithDeviceAuthorization names the device authorization endpoint and its
// grant type: people sign in with berth login's device code.
func WithDeviceAuthorization() DiscoveryOption {
	return func(d *discoveryDocument) {
		d.DeviceAuthorizationEndpoint = strings.TrimSuffix(d.Issuer, "/") + DeviceAuthorizationPath
		d.GrantTypesSupported = append(d.GrantTypesSupported, GrantDeviceCode)
	}
}

// NewDiscovery returns the handler for issuer, the registry's external URL
// (https://registry.example.com, from the configuration), whose keys are
// those of kr. It returns an error when issuer is not an absolute http(s) URL
// without query or fragment, as RFC 8414 requires.
func NewDiscovery(issuer string, kr *Keyring, opts ...DiscoveryOption) (*Discovery, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer %q is not an absolute http(s) URL without query or fragment", issuer)
	}
	base := strings.TrimSuffix(issuer, "/")
	dd := discoveryDocument{
		Issuer:             issuer,
		TokenEndpoint:      base + TokenPath,
		RevocationEndpoint: base + RevokePath,
		// "none": a public client (the berth CLI) revokes with the token alone.
		RevocationAuthMethods: []string{"none", "client_secret_basic", "client_secret_post"},
		JWKSURI:               base + JWKSPath,
		GrantTypesSupported:   []string{"client_credentials", "refresh_token", "password", grantTokenExchange},
		// A CI ID token as client assertion is not private_key_jwt (the
		// client signs nothing; its CI system's issuer does): it is named
		// by its assertion type.
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", clientAssertionJWTBearer},
		TokenEndpointAuthSigningAlgs:      algorithmNames(assertionAlgorithms),
		ClientAssertionTypes:              []string{clientAssertionJWTBearer},
		SubjectTokenTypes:                 []string{tokenTypeIDToken, tokenTypeJWT},
		ResponseTypesSupported:            []string{"token"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"ES256", "EdDSA"},
	}
	for _, o := range opts {
		o(&dd)
	}
	doc, err := json.Marshal(dd)
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return &Discovery{doc: doc, keys: kr}, nil
}

// Register adds the two routes to mux.
func (d *Discovery) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+DiscoveryPath, d.serveDocument)
	mux.HandleFunc("GET "+JWKSPath, d.serveJWKS)
}

// ServeHTTP serves both routes, for a caller that mounts the handler itself;
// other paths are 404 and other methods 405.
func (d *Discovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case DiscoveryPath, JWKSPath:
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == DiscoveryPath {
		d.serveDocument(w, r)
	} else {
		d.serveJWKS(w, r)
	}
}

func (d *Discovery) serveDocument(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, d.doc, "public, max-age=3600")
}

// serveJWKS answers with the current keys. Verifiers may cache them for five
// minutes: a rotated-in key signs at once, and a verifier that meets an
// unknown kid should fetch the set again.
func (d *Discovery) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, d.keys.JWKS(), "public, max-age=300")
}

func writeJSON(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
