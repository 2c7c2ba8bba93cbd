package berth

import (
	"net/http"
	"net/url"
	"strings"
)

// RefuseCrossSite returns cross_site_refused when r would change something
// (any method but GET, HEAD and OPTIONS) and the browser that sent it says
// another site did: Sec-Fetch-Site other than same-origin or none, or,
// from a browser that does not send it, an Origin that is not the
// registry's (publicURL, the url: of the configuration, or the scheme and
// host r came to). A browser keeps the Basic credentials a challenge once
// asked for and sends them with any request to the registry's origin, a
// form another site submits included, and a form with enctype text/plain
// can carry a JSON body: without this rule any page an owner visited could
// act as them. Command-line clients and the console's own forms are not
// affected: the first send neither header, the second are same-origin.
func RefuseCrossSite(r *http.Request, publicURL string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
	switch {
	case site == "same-origin" || site == "none":
		return nil
	case site == "" && (origin == "" || sameOrigin(r, origin, publicURL)):
		return nil
	}
	err := Errorf(CodeCrossSiteRefused, "berth makes no change that a browser sent from another site (its Sec-Fetch-Site or Origin header says so)").
		WithHint("make changes with the berth CLI or a registry client (docker, crane, oras), or in berth's console; behind a proxy, set url: to the address browsers use")
	if site != "" {
		err = err.WithDetail("sec_fetch_site", Truncate(site, 32))
	}
	if origin != "" {
		err = err.WithDetail("origin", Truncate(origin, 200))
	}
	return err
}

// sameOrigin reports whether origin, a request's Origin header, is the
// registry's: publicURL's scheme and host, or those r came to.
func sameOrigin(r *http.Request, origin, publicURL string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	if pub, err := url.Parse(publicURL); err == nil && pub.Host != "" && strings.EqualFold(u.Scheme, pub.Scheme) && strings.EqualFold(u.Host, pub.Host) {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}
