package berth

import (
	"net/http"
	"net/url"
)

// RefuseCrossSite returns cross_site_refused when r would change something
// (any method but GET, HEAD and OPTIONS) and the browser that sent it says
// another site did, by the rule of net/http's CrossOriginProtection:
// Sec-Fetch-Site other than same-origin or none, or, from a browser that
// does not send it, an Origin whose host is not the one r came to. The
// registry's own origin (publicURL, the url: of the configuration, which a
// proxy in front may make differ from r's host) is trusted. A browser keeps
// the Basic credentials a challenge once asked for and sends them with any
// request to the registry's origin, a form another site submits included,
// and a form with enctype text/plain can carry a JSON body: without this
// rule any page an owner visited could act as them. Command-line clients
// and the console's own forms are not affected: the first send neither
// header, the second are same-origin.
func RefuseCrossSite(r *http.Request, publicURL string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	cop := http.NewCrossOriginProtection()
	if pub, err := url.Parse(publicURL); err == nil && pub.Scheme != "" && pub.Host != "" {
		_ = cop.AddTrustedOrigin(pub.Scheme + "://" + pub.Host) // well formed by construction
	}
	if cop.Check(r) == nil {
		return nil
	}
	site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
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
