package berth_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

const (
	emptySHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	emptySHA512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("a", 64)
	tests := []struct {
		name string
		in   string
		want berth.Code // "" when valid
	}{
		{"sha256", emptySHA256, ""},
		{"sha512", emptySHA512, ""},
		{"sha256 all digits", "sha256:" + strings.Repeat("0", 64), ""},

		{"empty", "", berth.CodeDigestInvalid},
		{"missing colon", "sha256" + hex64, berth.CodeDigestInvalid},
		{"hex only", hex64, berth.CodeDigestInvalid},
		{"empty algorithm", ":" + hex64, berth.CodeDigestInvalid},
		{"empty hex", "sha256:", berth.CodeDigestInvalid},
		{"colon only", ":", berth.CodeDigestInvalid},
		{"sha256 too short", "sha256:" + hex64[:63], berth.CodeDigestInvalid},
		{"sha256 too long", "sha256:" + hex64 + "a", berth.CodeDigestInvalid},
		{"sha256 with sha512 length", "sha256:" + strings.TrimPrefix(emptySHA512, "sha512:"), berth.CodeDigestInvalid},
		{"sha512 with sha256 length", "sha512:" + strings.TrimPrefix(emptySHA256, "sha256:"), berth.CodeDigestInvalid},
		{"upper-case hex", "sha256:" + strings.ToUpper(strings.TrimPrefix(emptySHA256, "sha256:")), berth.CodeDigestInvalid},
		{"one upper-case hex digit", "sha256:E" + hex64[1:], berth.CodeDigestInvalid},
		{"non-hex letter", "sha256:g" + hex64[1:], berth.CodeDigestInvalid},
		{"second colon", "sha256:" + hex64[:63] + ":", berth.CodeDigestInvalid},
		{"space", "sha256: " + hex64[1:], berth.CodeDigestInvalid},
		{"upper-case algorithm", "SHA256:" + hex64, berth.CodeDigestInvalid},
		// Well-formed per the image spec, but not computed by berth.
		{"unknown algorithm", "md5:" + strings.Repeat("a", 32), berth.CodeDigestInvalid},
		{"registered but unsupported", "blake3:" + hex64, berth.CodeDigestInvalid},
		{"algorithm with separator", "sha256+b64u:" + hex64, berth.CodeDigestInvalid},
		{"algorithm with slash", "sha/256:" + hex64, berth.CodeDigestInvalid},
		{"algorithm with space", "sha 256:" + hex64, berth.CodeDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := berth.ParseDigest(tt.in)
			if got := berth.ErrorCode(err); got != tt.want {
				t.Fatalf("ParseDigest(%q) code = %q, want %q (err: %v)", tt.in, got, tt.want, err)
			}
			if tt.want != "" {
				if d != "" {
					t.Errorf("ParseDigest(%q) = %q with an error, want empty", tt.in, d)
				}
				return
			}
			if string(d) != tt.in {
				t.Errorf("ParseDigest(%q) = %q", tt.in, d)
			}
			alg, enc, _ := strings.Cut(tt.in, ":")
			if d.Algorithm() != alg || d.Encoded() != enc || d.String() != tt.in {
				t.Errorf("parts of %q: Algorithm %q, Encoded %q, String %q", tt.in, d.Algorithm(), d.Encoded(), d.String())
			}
		})
	}
}

func TestDigestOf(t *testing.T) {
	content := []byte("berth")
	s256 := sha256.Sum256(content)
	s512 := sha512.Sum512(content)
	tests := []struct {
		alg  string
		in   []byte
		want berth.Digest
	}{
		{"", nil, emptySHA256},
		{berth.SHA256, nil, emptySHA256},
		{berth.SHA512, nil, emptySHA512},
		{"", content, berth.Digest("sha256:" + hex.EncodeToString(s256[:]))},
		{berth.SHA512, content, berth.Digest("sha512:" + hex.EncodeToString(s512[:]))},
	}
	for _, tt := range tests {
		got := berth.DigestOf(tt.alg, tt.in)
		if got != tt.want {
			t.Errorf("DigestOf(%q, %q) = %s, want %s", tt.alg, tt.in, got, tt.want)
		}
		// What berth computes, berth accepts.
		if _, err := berth.ParseDigest(string(got)); err != nil {
			t.Errorf("ParseDigest(DigestOf(%q, %q)): %v", tt.alg, tt.in, err)
		}
	}
	if h := berth.NewHash("md5"); h != nil {
		t.Errorf("NewHash(md5) = %T, want nil", h)
	}
}

func TestDigestFromHashMatchesDigestOf(t *testing.T) {
	content := []byte("two\nparts")
	for _, alg := range []string{berth.SHA256, berth.SHA512} {
		h := berth.NewHash(alg)
		h.Write(content[:3])
		h.Write(content[3:])
		if got, want := berth.DigestFromHash(alg, h), berth.DigestOf(alg, content); got != want {
			t.Errorf("%s: DigestFromHash = %s, DigestOf = %s", alg, got, want)
		}
	}
}

func TestVerifyDigest(t *testing.T) {
	a := berth.DigestOf("", []byte("a"))
	b := berth.DigestOf("", []byte("b"))
	if err := berth.VerifyDigest(a, a); err != nil {
		t.Errorf("VerifyDigest(a, a) = %v, want nil", err)
	}
	err := berth.VerifyDigest(a, b)
	if got := berth.ErrorCode(err); got != berth.CodeDigestInvalid {
		t.Fatalf("VerifyDigest(a, b) code = %q, want %q", got, berth.CodeDigestInvalid)
	}
	if e := berth.AsError(err); e.Hint == "" {
		t.Error("a digest mismatch carries no hint")
	}
	// The same content under another algorithm is another digest.
	if err := berth.VerifyDigest(a, berth.DigestOf(berth.SHA512, []byte("a"))); !berth.IsCode(err, berth.CodeDigestInvalid) {
		t.Errorf("VerifyDigest(sha256, sha512 of the same bytes) = %v, want digest_invalid", err)
	}
}

func TestDigestShort(t *testing.T) {
	tests := []struct {
		in   berth.Digest
		want string
	}{
		{emptySHA256, "sha256:e3b0c44298fc"},
		{emptySHA512, "sha512:cf83e1357eef"},
		// Nothing to shorten: returned as is.
		{"sha256:e3b0c44298fc", "sha256:e3b0c44298fc"},
		{"sha256:abc", "sha256:abc"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := tt.in.Short(); got != tt.want {
			t.Errorf("Digest(%q).Short() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
