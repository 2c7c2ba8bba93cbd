package berth

import (
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// Credentials berth issues (client secrets "brt_", refresh tokens "brr_",
// webhook signing secrets "brw_") share
// one shape: a fixed prefix, a body of uniformly random letters and digits, and
// the CRC-32 of prefix and body as 6 base-62 digits, so that a scanner finds
// them by prefix and verifies them by checksum, with no false positives.
const (
	base62                   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	credentialChecksumLength = 6
)

// newCredentialValue draws prefix + bodyLength characters from rand and
// appends the checksum. Bytes are used by rejection sampling, so each body
// character is uniform over the 62 letters and digits; a constant or
// exhausted reader fails rather than spins.
func newCredentialValue(rand io.Reader, prefix string, bodyLength int) (string, error) {
	body := make([]byte, 0, bodyLength)
	buf := make([]byte, 2*bodyLength)
	for reads := 0; len(body) < bodyLength; reads++ {
		if reads == 8 {
			return "", fmt.Errorf("the random source gave %d bytes with too few usable values", reads*len(buf))
		}
		if _, err := io.ReadFull(rand, buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4 × 62: keeping the rest makes b%62 uniform
				continue
			}
			if body = append(body, base62[b%62]); len(body) == bodyLength {
				break
			}
		}
	}
	s := prefix + string(body)
	return s + credentialChecksum(s), nil
}

// credentialChecksum returns the CRC-32 of s as 6 base-62 digits.
func credentialChecksum(s string) string {
	c := crc32.ChecksumIEEE([]byte(s))
	var out [credentialChecksumLength]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return string(out[:])
}

// hasCredentialShape reports whether s is prefix, then letters and digits to
// length characters in all, ending in a checksum that matches.
func hasCredentialShape(s, prefix string, length int) bool {
	if len(s) != length || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	split := len(s) - credentialChecksumLength
	return credentialChecksum(s[:split]) == s[split:]
}

// formatRedacted is the Format method of every credential type: it writes the
// redacted form shown (quoted for %q, goString for %#v) whatever the verb, so
// no verb reaches the value.
func formatRedacted(f fmt.State, verb rune, shown, goString string) {
	switch {
	case verb == 'q':
		io.WriteString(f, strconv.Quote(shown))
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, goString)
	default:
		io.WriteString(f, shown)
	}
}
