package scan

import (
	"encoding/base64"
	"strings"

	"github.com/berth-dev/berth"
)

// LeakedBerthSecret is a berth client secret a finding holds: the value
// itself (a berth-client-secret finding), or the password of a docker config
// auths entry, base64 of CLIENT_ID:SECRET, which docker login writes and the
// most common leak is (a committed config.json). Fingerprint and Excerpt are
// the secret's own, so that the same secret found both ways is one.
type LeakedBerthSecret struct {
	Value       string
	Fingerprint string
	Excerpt     string
}

// BerthSecret returns the berth client secret (or personal access token) f
// holds, if any: what berth scan --revoke revokes.
func (f Finding) BerthSecret() (LeakedBerthSecret, bool) {
	v := f.value
	switch f.Kind {
	case KindBerthSecret:
	case KindBerthPAT:
		return LeakedBerthSecret{Value: v, Fingerprint: Fingerprint(KindBerthPAT, v), Excerpt: excerpt(KindBerthPAT, v)}, true
	case KindDockerConfigAuth:
		dec, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return LeakedBerthSecret{}, false
		}
		_, pass, ok := strings.Cut(string(dec), ":")
		if !ok || berth.CheckSecretFormat(pass) != nil {
			return LeakedBerthSecret{}, false
		}
		v = pass
	default:
		return LeakedBerthSecret{}, false
	}
	return LeakedBerthSecret{Value: v, Fingerprint: Fingerprint(KindBerthSecret, v), Excerpt: excerpt(KindBerthSecret, v)}, true
}
