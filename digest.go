package berth

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"strings"
	"unicode/utf8"
)

// Digest is a content address, "algorithm:hex", as in the OCI image spec.
// Only values returned by ParseDigest or computed by a Digester are valid.
type Digest string

// Supported digest algorithms.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

var digestHexLen = map[string]int{SHA256: 64, SHA512: 128}

// digestInvalid is ParseDigest's refusal, with the hint every one shares.
func digestInvalid(format string, args ...any) error {
	return Errorf(CodeDigestInvalid, format, args...).
		WithHint("a digest is sha256: and the 64 lower-case hex characters that sha256sum prints for the content, such as sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
}

// ParseDigest validates s and returns it as a Digest. It returns digest_invalid
// for a malformed value and for an algorithm berth does not compute (sha256 and
// sha512 are supported).
func ParseDigest(s string) (Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || alg == "" || enc == "" {
		return "", digestInvalid("%q is not a digest: want ALGORITHM:HEX such as sha256:e3b0c442…", Truncate(s, 80))
	}
	for _, r := range alg {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '.' || r == '_' || r == '-') {
			return "", digestInvalid("digest algorithm %q holds characters outside [a-z0-9+._-]", Truncate(alg, 40))
		}
	}
	want, known := digestHexLen[alg]
	if !known {
		return "", digestInvalid("digest algorithm %q is not supported: use sha256 or sha512", Truncate(alg, 40))
	}
	if len(enc) != want {
		return "", digestInvalid("a %s digest has %d hex characters, %q has %d", alg, want, Truncate(s, 80), len(enc))
	}
	for _, r := range enc {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", digestInvalid("digest %q holds characters other than lower-case hex", Truncate(s, 80))
		}
	}
	return Digest(s), nil
}

// Algorithm returns the part before the colon.
func (d Digest) Algorithm() string { a, _, _ := strings.Cut(string(d), ":"); return a }

// Encoded returns the hex part after the colon.
func (d Digest) Encoded() string { _, e, _ := strings.Cut(string(d), ":"); return e }

func (d Digest) String() string { return string(d) }

// Short returns the algorithm and the first 12 hex characters, for messages.
func (d Digest) Short() string {
	if e := d.Encoded(); len(e) > 12 {
		return d.Algorithm() + ":" + e[:12]
	}
	return string(d)
}

// NewHash returns a new hash for a supported algorithm, or nil.
func NewHash(algorithm string) hash.Hash {
	switch algorithm {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// DigestOf returns the digest of b under algorithm (sha256 when empty).
func DigestOf(algorithm string, b []byte) Digest {
	if algorithm == "" {
		algorithm = SHA256
	}
	h := NewHash(algorithm)
	h.Write(b)
	return DigestFromHash(algorithm, h)
}

// DigestFromHash formats the current sum of h.
func DigestFromHash(algorithm string, h hash.Hash) Digest {
	return Digest(algorithm + ":" + hex.EncodeToString(h.Sum(nil)))
}

// VerifyDigest returns digest_invalid when got differs from want.
func VerifyDigest(want, got Digest) error {
	if want != got {
		return Errorf(CodeDigestInvalid, "the content's digest is %s, not the %s that was declared", got, want).
			WithHint("send the exact bytes the digest was computed from, or compute the digest again")
	}
	return nil
}

// Truncate returns s cut to at most n bytes, at a character boundary, with
// "…" when anything was cut: how a refusal quotes what a caller sent.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// sha256Hex is the hex SHA-256 of s: how berth keeps a value it must
// recognise but never store (a token, a device code, an assertion).
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
