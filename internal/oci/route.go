package oci

import (
	"strings"

	"github.com/berth-dev/berth"
)

// kind names the endpoint family a /v2/ path addresses.
type kind int

const (
	kindNone kind = iota
	kindBase
	kindCatalog
	kindTags
	kindManifest
	kindBlob
	kindUploadStart
	kindUpload
	kindReferrers
)

// route is a parsed /v2/ path: the repository name and the last path element
// (a tag, digest or upload id) when the endpoint has one.
type route struct {
	Repo string
	Kind kind
	Ref  string
	// Caller is who the request acts as once the Guard authenticated it;
	// nil without a Guard.
	Caller *berth.Caller
	// Upstream is the upstream whose cache namespace holds Repo; nil for
	// a repository of berth's own.
	Upstream *berth.Upstream
}

// parseRoute splits a request path into a route. References and upload ids
// never hold '/', so the endpoint is read from the end of the path and
// everything before it is the repository name.
func parseRoute(path string) route {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{Kind: kindBase}
		}
		return route{}
	}
	if rest == "" {
		return route{Kind: kindBase}
	}
	if rest == "_catalog" {
		return route{Kind: kindCatalog}
	}
	trailing := strings.HasSuffix(rest, "/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	n := len(parts)
	name := func(k int) string { return strings.Join(parts[:n-k], "/") }
	switch {
	case n >= 3 && parts[n-2] == "blobs" && parts[n-1] == "uploads":
		return route{Repo: name(2), Kind: kindUploadStart}
	case n >= 4 && !trailing && parts[n-3] == "blobs" && parts[n-2] == "uploads":
		return route{Repo: name(3), Kind: kindUpload, Ref: parts[n-1]}
	case n >= 3 && !trailing && parts[n-2] == "tags" && parts[n-1] == "list":
		return route{Repo: name(2), Kind: kindTags}
	case n >= 3 && !trailing && parts[n-2] == "manifests":
		return route{Repo: name(2), Kind: kindManifest, Ref: parts[n-1]}
	case n >= 3 && !trailing && parts[n-2] == "blobs":
		return route{Repo: name(2), Kind: kindBlob, Ref: parts[n-1]}
	case n >= 3 && !trailing && parts[n-2] == "referrers":
		return route{Repo: name(2), Kind: kindReferrers, Ref: parts[n-1]}
	}
	return route{}
}
