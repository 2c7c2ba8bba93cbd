package oci

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth"
)

// Header values that never change, shared by every response rather than
// allocated for each: net/http only reads a response's header values. Each
// slice's capacity is its length, so a later Add copies instead of writing
// into the shared array. Keys set by assignment must be canonical (as
// http.CanonicalHeaderKey spells them).
var (
	apiVersionValue   = []string{"registry/2.0"}[:1:1]
	octetStreamValue  = []string{"application/octet-stream"}[:1:1]
	cacheForeverValue = []string{"max-age=31536000"}[:1:1]
	bytesValue        = []string{"bytes"}[:1:1]
)

// setDigestHeaders sets Docker-Content-Digest and Etag to d, Content-Length
// to size unless it is negative, and Content-Type to contentType unless it is
// "": two allocations in all (one string holding the digest, Etag and length,
// one array of the values' slices).
func setDigestHeaders(hdr http.Header, d berth.Digest, size int64, contentType string) {
	var b strings.Builder
	b.Grow(2*len(d) + 2 + 20)
	b.WriteString(string(d))
	b.WriteByte('"')
	b.WriteString(string(d))
	b.WriteByte('"')
	etagEnd := b.Len()
	if size >= 0 {
		var digits [20]byte
		b.Write(strconv.AppendInt(digits[:0], size, 10))
	}
	s := b.String()
	n := len(d)
	v := make([]string, 4)
	v[0], v[1], v[2], v[3] = s[:n], s[n:etagEnd], s[etagEnd:], contentType
	hdr["Docker-Content-Digest"] = v[0:1:1]
	hdr["Etag"] = v[1:2:2]
	if size >= 0 {
		hdr["Content-Length"] = v[2:3:3]
	}
	if contentType != "" {
		hdr["Content-Type"] = v[3:4:4]
	}
}

// plainGET reports whether r asks for the whole body unconditionally: no
// Range and no precondition, so that http.ServeContent would answer 200 with
// every byte, which the caller may then send itself.
func plainGET(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, k := range [...]string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	return true
}
