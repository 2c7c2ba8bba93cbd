package sqlcodec

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

// EncodeReferences writes a manifest's references in order, one
// "KIND DIGEST" per line; neither a kind nor a digest can hold a space or a
// newline, and a reference that would is refused.
func EncodeReferences(refs []berth.Reference) (string, error) {
	var b strings.Builder
	for i, r := range refs {
		if r.Kind != berth.ReferenceBlob && r.Kind != berth.ReferenceManifest {
			return "", fmt.Errorf("reference %s has kind %q, not %q or %q", r.Digest, r.Kind, berth.ReferenceBlob, berth.ReferenceManifest)
		}
		if strings.ContainsAny(string(r.Digest), " \n") || r.Digest == "" {
			return "", fmt.Errorf("reference digest %q is not a digest", r.Digest)
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(r.Kind))
		b.WriteByte(' ')
		b.WriteString(string(r.Digest))
	}
	return b.String(), nil
}

// DecodeReferences reads what EncodeReferences wrote.
func DecodeReferences(s string) ([]berth.Reference, error) {
	if s == "" {
		return nil, nil
	}
	refs := make([]berth.Reference, 0, strings.Count(s, "\n")+1)
	for line := range strings.SplitSeq(s, "\n") {
		kind, digest, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("decode references: malformed line %q", line)
		}
		refs = append(refs, berth.Reference{Kind: berth.ReferenceKind(kind), Digest: berth.Digest(digest)})
	}
	return refs, nil
}
