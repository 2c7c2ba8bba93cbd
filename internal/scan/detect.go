package scan

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"

	"github.com/berth-dev/berth"
)

// match is one verified credential in a buffer: its kind and where its value
// starts and ends.
type match struct {
	kind       Kind
	start, end int
}

// detect appends to ms every credential in buf, in no particular order.
//
// Each family of credentials has an anchor, a short string it always holds,
// that bytes.Index (vectorised) or IndexByte find much faster than any
// regular expression could walk the buffer; only at an anchor does a
// verifier look at the bytes around it. Verifiers check exact lengths,
// alphabets, word boundaries and, where the format has one, the checksum.
func detect(buf []byte, ms []match) []match {
	ms = detectUnderscore(buf, ms)
	ms = detectPrivateKeys(buf, ms)
	ms = detectAWS(buf, []byte("AKIA"), ms)
	ms = detectAWS(buf, []byte("ASIA"), ms)
	ms = detectGitLab(buf, ms)
	ms = detectAzure(buf, ms)
	ms = detectJWT(buf, ms)
	ms = detectDockerAuths(buf, ms)
	return ms
}

// isWord reports whether c is in RE2's \w: letters, digits and '_'.
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// bounded reports whether buf[start:end] has no byte in class just before or
// just after it.
func bounded(buf []byte, start, end int, class func(byte) bool) bool {
	return (start == 0 || !class(buf[start-1])) && (end == len(buf) || !class(buf[end]))
}

// allOf reports whether every byte of b is in class.
func allOf(b []byte, class func(byte) bool) bool {
	for _, c := range b {
		if !class(c) {
			return false
		}
	}
	return true
}

// varied reports whether b holds at least n distinct bytes: a shape-only
// match ("AKIAXXXXXXXXXXXXXXXX", "glpat-xxxxxxxxxxxxxxxxxxxx") is a
// placeholder, not a credential.
func varied(b []byte, n int) bool {
	var seen [256]bool
	k := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			if k++; k >= n {
				return true
			}
		}
	}
	return false
}

// Lengths of the formats found at an underscore.
const (
	githubTokenLength = 40                   // ghp_ + 30 random + 6 checksum
	githubPATLength   = 11 + 22 + 1 + 59     // github_pat_ + 22 + _ + 59
	githubPATPrefix   = "github_pat_"        //
	berthTokenLength  = berth.SecretLength   // brt_ and brr_ share it
	maxUnderscoreBack = len(githubPATPrefix) // how far before '_' a prefix may start
)

// detectUnderscore finds the credentials whose prefix ends in '_': berth's
// brt_, brr_, brw_, brp_ and brs_, GitHub's gh?_ and github_pat_.
func detectUnderscore(buf []byte, ms []match) []match {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '_')
		if j < 0 {
			return ms
		}
		u := i + j
		i = u + 1
		if u < 3 {
			continue
		}
		start := u - 3
		p0, p1, p2 := buf[start], buf[start+1], buf[start+2]
		switch {
		case p0 == 'b' && p1 == 'r' && (p2 == 't' || p2 == 'r' || p2 == 'w' || p2 == 'p' || p2 == 's'):
			end := start + berthTokenLength
			if end > len(buf) || !bounded(buf, start, end, isWord) {
				continue
			}
			v := string(buf[start:end])
			switch p2 {
			case 't':
				if berth.CheckSecretFormat(v) == nil {
					ms = append(ms, match{KindBerthSecret, start, end})
				}
			case 'p':
				if berth.IsPATValue(v) {
					ms = append(ms, match{KindBerthPAT, start, end})
				}
			case 'w':
				if berth.IsWebhookSecret(v) {
					ms = append(ms, match{KindBerthWebhookKey, start, end})
				}
			case 's':
				if berth.IsSessionValue(v) {
					ms = append(ms, match{KindBerthSession, start, end})
				}
			default:
				if _, err := berth.ParseRefreshTokenValue(v); err == nil {
					ms = append(ms, match{KindBerthRefreshToken, start, end})
				}
			}
		case p0 == 'g' && p1 == 'h' && (p2 == 'p' || p2 == 'o' || p2 == 'u' || p2 == 's' || p2 == 'r'):
			end := start + githubTokenLength
			if end > len(buf) || !bounded(buf, start, end, isWord) {
				continue
			}
			if githubChecksumOK(buf[u+1 : end]) {
				ms = append(ms, match{KindGitHubToken, start, end})
			}
		case p0 == 'h' && p1 == 'u' && p2 == 'b' && u >= 6 && string(buf[u-6:start]) == "git":
			start = u - 6
			end := start + githubPATLength
			if end > len(buf) || string(buf[start:start+len(githubPATPrefix)]) != githubPATPrefix || !bounded(buf, start, end, isWord) {
				continue
			}
			body := buf[start+len(githubPATPrefix) : end]
			if body[22] == '_' && allOf(body[:22], isAlnum) && allOf(body[23:], isAlnum) && varied(body, 16) {
				ms = append(ms, match{KindGitHubFineGrained, start, end})
			}
		}
	}
}

// githubChecksumOK reports whether body, the 36 characters after a classic
// GitHub token's prefix, is 30 random letters and digits followed by the
// CRC-32 (IEEE) of those 30, in base 62 (0-9A-Za-z) padded to 6 digits. This
// is GitHub's published token format (github.blog, 2021-04-05, "Behind
// GitHub's new authentication token formats").
func githubChecksumOK(body []byte) bool {
	if len(body) != 36 || !allOf(body, isAlnum) {
		return false
	}
	var n uint64
	for _, c := range body[30:] {
		n = n*62 + uint64(base62Digit(c))
	}
	return n == uint64(crc32.ChecksumIEEE(body[:30]))
}

func base62Digit(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 10
	}
	return c - 'a' + 36
}

// Private keys: a PEM block whose label ends in PRIVATE KEY (PKCS#1 "RSA",
// "EC", "DSA", PKCS#8 "", "ENCRYPTED", "OPENSSH") or is "PGP PRIVATE KEY
// BLOCK", with its END line and a body of base64 between, so that a
// documentation stub ("-----BEGIN PRIVATE KEY-----\n...\n-----END …") or a
// public key is never reported.
var (
	pemBegin = []byte("-----BEGIN ")
	pemDash  = []byte("-----")
)

const (
	maxPEMLabel     = 40
	maxPEMBlock     = 64 << 10
	minPEMBodyBytes = 64
)

func detectPrivateKeys(buf []byte, ms []match) []match {
	for i := 0; ; {
		j := bytes.Index(buf[i:], pemBegin)
		if j < 0 {
			return ms
		}
		start := i + j
		i = start + len(pemBegin)
		rest := buf[i:min(len(buf), i+maxPEMLabel+len(pemDash))]
		k := bytes.Index(rest, pemDash)
		if k < 0 {
			continue
		}
		label := rest[:k]
		if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && !bytes.Equal(label, []byte("PGP PRIVATE KEY BLOCK")) {
			continue
		}
		bodyStart := i + k + len(pemDash)
		endLine := append(append([]byte("-----END "), label...), pemDash...)
		window := buf[bodyStart:min(len(buf), bodyStart+maxPEMBlock)]
		e := bytes.Index(window, endLine)
		if e < 0 {
			continue
		}
		b64 := 0
		for _, c := range window[:e] {
			if isAlnum(c) || c == '+' || c == '/' {
				b64++
			}
		}
		if b64 < minPEMBodyBytes {
			continue
		}
		end := bodyStart + e + len(endLine)
		ms = append(ms, match{KindPrivateKey, start, end})
		i = end
	}
}

// AWS access key ids: AKIA (long-term) or ASIA (temporary) followed by 16
// characters of base 32 (A-Z, 2-7), standing alone. AWS's documented example
// key is left alone.
func detectAWS(buf, prefix []byte, ms []match) []match {
	const length = 20
	for i := 0; ; {
		j := bytes.Index(buf[i:], prefix)
		if j < 0 {
			return ms
		}
		start := i + j
		i = start + len(prefix)
		end := start + length
		if end > len(buf) || !bounded(buf, start, end, isAlnum) {
			continue
		}
		id := buf[start+len(prefix) : end]
		if !allOf(id, isBase32) || !varied(id, 6) || string(buf[start:end]) == "AKIAIOSFODNN7EXAMPLE" {
			continue
		}
		ms = append(ms, match{KindAWSAccessKeyID, start, end})
	}
}

func isBase32(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '2' && c <= '7' }

// GitLab personal access tokens: glpat- and at least 20 characters of
// [0-9A-Za-z_-] (the newer routable format adds dots and more characters).
var glpat = []byte("glpat-")

func isGitLabChar(c byte) bool { return isWord(c) || c == '-' || c == '.' }

func detectGitLab(buf []byte, ms []match) []match {
	for i := 0; ; {
		j := bytes.Index(buf[i:], glpat)
		if j < 0 {
			return ms
		}
		start := i + j
		i = start + len(glpat)
		if start > 0 && isGitLabChar(buf[start-1]) {
			continue
		}
		end := i
		for end < len(buf) && end-i < 128 && isGitLabChar(buf[end]) {
			end++
		}
		// A trailing dot ends a sentence; a trailing '-' belongs to the
		// token, whose alphabet includes it.
		for end > i && buf[end-1] == '.' {
			end--
		}
		body := buf[i:end]
		if len(body) < 20 || len(body) >= 128 || !varied(body, 10) {
			continue
		}
		ms = append(ms, match{KindGitLabToken, start, end})
		i = end
	}
}

// Azure (Microsoft Entra ID) client secrets of the current format: three
// characters, a digit (the format's version), "Q~", then 31 to 34 more, 37 to
// 40 in all, of [0-9A-Za-z_~.-]; the "Q~" is the anchor.
var azureMark = []byte("Q~")

func isAzureChar(c byte) bool { return isWord(c) || c == '~' || c == '.' || c == '-' }

func detectAzure(buf []byte, ms []match) []match {
	for i := 0; ; {
		j := bytes.Index(buf[i:], azureMark)
		if j < 0 {
			return ms
		}
		q := i + j
		i = q + len(azureMark)
		start := q - 4
		if start < 0 || buf[q-1] < '0' || buf[q-1] > '9' || !allOf(buf[start:q], isAzureChar) || (start > 0 && isAzureChar(buf[start-1])) {
			continue
		}
		end := i
		for end < len(buf) && end-start <= 40 && isAzureChar(buf[end]) {
			end++
		}
		if n := end - start; n < 37 || n > 40 || !varied(buf[i:end], 12) {
			continue
		}
		ms = append(ms, match{KindAzureClientSecret, start, end})
		i = end
	}
}

// JWTs: three base64url parts joined by dots whose header decodes to a JSON
// object with an "alg" and whose payload decodes to a JSON object. "eyJ" is
// how the base64url of `{"` begins, so it anchors every JWT header.
const maxJWT = 16 << 10

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func detectJWT(buf []byte, ms []match) []match {
	// 'J' is much rarer in text than 'e', so IndexByte on it skips further
	// than bytes.Index on "eyJ" would.
	if len(buf) < 3 {
		return ms
	}
	for i := 2; ; {
		j := bytes.IndexByte(buf[i:], 'J')
		if j < 0 {
			return ms
		}
		start := i + j - 2
		i += j + 1
		if buf[start] != 'e' || buf[start+1] != 'y' {
			continue
		}
		if start > 0 && (isB64URL(buf[start-1]) || buf[start-1] == '.') {
			continue
		}
		var parts [3][2]int
		p, ok := start, true
		for n := range parts {
			e := p
			for e < len(buf) && e-start < maxJWT && isB64URL(buf[e]) {
				e++
			}
			parts[n] = [2]int{p, e}
			if n < 2 {
				if e >= len(buf) || buf[e] != '.' || e == p {
					ok = false
					break
				}
				p = e + 1
			}
		}
		if !ok {
			continue
		}
		end := parts[2][1]
		if end < len(buf) && buf[end] == '.' {
			continue // four or more parts: not a compact JWS
		}
		var header struct {
			Alg *string `json:"alg"`
		}
		if !decodeJSONPart(buf[parts[0][0]:parts[0][1]], &header) || header.Alg == nil {
			continue
		}
		var payload map[string]any
		if !decodeJSONPart(buf[parts[1][0]:parts[1][1]], &payload) {
			continue
		}
		if parts[2][0] == parts[2][1] && *header.Alg != "none" {
			continue // signed, but the signature is missing
		}
		ms = append(ms, match{KindJWT, start, end})
		i = end
	}
}

// decodeJSONPart decodes one base64url part (unpadded) of a JWT as JSON.
func decodeJSONPart(b []byte, v any) bool {
	dec := make([]byte, base64.RawURLEncoding.DecodedLen(len(b)))
	n, err := base64.RawURLEncoding.Decode(dec, b)
	if err != nil || n == 0 || dec[0] != '{' {
		return false
	}
	return json.Unmarshal(dec[:n], v) == nil
}

// Docker config auths entries: inside the object of an "auths" key, every
// "auth": "BASE64" whose value decodes to user:password with both parts
// present (what docker login writes without a credential helper).
var (
	dockerAuths = []byte(`"auths"`)
	dockerAuth  = []byte(`"auth"`)
)

func detectDockerAuths(buf []byte, ms []match) []match {
	for i := 0; ; {
		j := bytes.Index(buf[i:], dockerAuths)
		if j < 0 {
			return ms
		}
		i += j + len(dockerAuths)
		p := skipSpace(buf, i)
		if p >= len(buf) || buf[p] != ':' {
			continue
		}
		p = skipSpace(buf, p+1)
		if p >= len(buf) || buf[p] != '{' {
			continue
		}
		end, ok := objectEnd(buf, p)
		if !ok {
			continue
		}
		ms = detectDockerAuthValues(buf, p, end, ms)
		i = end
	}
}

// maxAuthsObject bounds the auths object of a docker config.
const maxAuthsObject = 64 << 10

// objectEnd returns the index just past the JSON object that starts at
// buf[start] ('{'), and false when it does not end within maxAuthsObject.
func objectEnd(buf []byte, start int) (int, bool) {
	depth, inString := 0, false
	for i := start; i < min(len(buf), start+maxAuthsObject); i++ {
		c := buf[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{':
			depth++
		case c == '}':
			if depth--; depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

func detectDockerAuthValues(buf []byte, from, to int, ms []match) []match {
	obj := buf[:to]
	for i := from; ; {
		j := bytes.Index(obj[i:], dockerAuth)
		if j < 0 {
			return ms
		}
		i += j + len(dockerAuth)
		p := skipSpace(obj, i)
		if p >= len(obj) || obj[p] != ':' {
			continue
		}
		p = skipSpace(obj, p+1)
		if p >= len(obj) || obj[p] != '"' {
			continue
		}
		start := p + 1
		end := start
		for end < len(obj) && end-start < 4096 && obj[end] != '"' {
			end++
		}
		if end >= len(obj) || obj[end] != '"' {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(string(obj[start:end]))
		if err != nil {
			continue
		}
		user, pass, ok := bytes.Cut(dec, []byte(":"))
		if !ok || len(user) == 0 || len(pass) == 0 {
			continue
		}
		ms = append(ms, match{KindDockerConfigAuth, start, end})
		i = end
	}
}

func skipSpace(buf []byte, i int) int {
	for i < len(buf) && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r') {
		i++
	}
	return i
}
