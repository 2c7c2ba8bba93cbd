package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/oauth"
)

func TestDiscovery(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	d, err := oauth.NewDiscovery("https://registry.test", kr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Register(mux)
	for name, h := range map[string]http.Handler{"mux": mux, "ServeHTTP": d} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()

			var doc map[string]any
			getJSON(t, srv.URL+"/.well-known/openid-configuration", &doc)
			for k, want := range map[string]string{
				"issuer":         "https://registry.test",
				"token_endpoint": "https://registry.test/oauth2/token",
				"jwks_uri":       "https://registry.test/oauth2/jwks",
			} {
				if doc[k] != want {
					t.Errorf("%s = %v, want %s", k, doc[k], want)
				}
			}
			methods, _ := json.Marshal(doc["token_endpoint_auth_methods_supported"])
			if string(methods) != `["client_secret_basic","client_secret_post","urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]` {
				t.Errorf("token_endpoint_auth_methods_supported = %s", methods)
			}
			grants, _ := json.Marshal(doc["grant_types_supported"])
			if string(grants) != `["client_credentials","refresh_token","password","urn:ietf:params:oauth:grant-type:token-exchange"]` {
				t.Errorf("grant_types_supported = %s", grants)
			}

			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			getJSON(t, srv.URL+"/oauth2/jwks", &set)
			if len(set.Keys) != 1 || set.Keys[0]["kid"] != keyIDs(kr)[0] {
				t.Errorf("JWKS keys %v", set.Keys)
			}

			resp, err := http.Post(srv.URL+"/oauth2/jwks", "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /oauth2/jwks: %d, want 405", resp.StatusCode)
			}
		})
	}

	// The JWKS follows rotations.
	if _, err := kr.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, srv.URL+"/oauth2/jwks", &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k["kid"].(string))
	}
	if want := keyIDs(kr); len(kids) != 2 || !slices.Contains(kids, want[0]) || !slices.Contains(kids, want[1]) {
		t.Errorf("JWKS after rotation: %v, want %v", kids, want)
	}
}

func TestDiscoveryRefusesBadIssuer(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	for _, issuer := range []string{"", "registry.test", "ftp://registry.test", "https://registry.test?x=1", "https://registry.test#f"} {
		if _, err := oauth.NewDiscovery(issuer, kr); err == nil {
			t.Errorf("NewDiscovery(%q) accepted it", issuer)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
