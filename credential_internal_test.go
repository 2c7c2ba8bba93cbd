package berth

import "testing"

// Every credential prefix has the shape holdsCredential scans for ("br", a
// letter, '_') and the length RedactCredentials cuts at: a prefix of another
// shape would escape redaction silently.
func TestCredentialPrefixes(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range credentialPrefixes {
		if len(p) != credentialPrefixLength || p[:2] != "br" || p[3] != '_' || !isBase62(p[2]) {
			t.Errorf("credential prefix %q is not br, a letter and '_'", p)
		}
		if seen[p] {
			t.Errorf("credential prefix %q is listed twice", p)
		}
		seen[p] = true
	}
}
