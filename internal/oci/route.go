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
	// The last three path elements, and what precedes each, read from the
	// end without splitting the path (a GET allocates nothing here). A
	// missing element is "" with ok false.
	trailing := strings.HasSuffix(rest, "/")
	s := strings.TrimSuffix(rest, "/")
	before1, last, ok1 := cutLast(s)
	before2, second, ok2 := cutLast(before1)
	before3, third, ok3 := cutLast(before2)
	ok2 = ok1 && ok2 // three elements at least
	ok3 = ok2 && ok3 // four at least
	switch {
	case ok2 && second == "blobs" && last == "uploads":
		return route{Repo: before2, Kind: kindUploadStart}
	case ok3 && !trailing && third == "blobs" && second == "uploads":
		return route{Repo: before3, Kind: kindUpload, Ref: last}
	case ok2 && !trailing && second == "tags" && last == "list":
		return route{Repo: before2, Kind: kindTags}
	case ok2 && !trailing && second == "manifests":
		return route{Repo: before2, Kind: kindManifest, Ref: last}
	case ok2 && !trailing && second == "blobs":
		return route{Repo: before2, Kind: kindBlob, Ref: last}
	case ok2 && !trailing && second == "referrers":
		return route{Repo: before2, Kind: kindReferrers, Ref: last}
	}
	return route{}
}

// cutLast splits s at its last '/': what precedes it and the element after
// it; ok is false when s holds no '/' (then elem is s).
func cutLast(s string) (before, elem string, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}
