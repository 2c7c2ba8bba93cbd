package berth_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

func TestValidateRepositoryName(t *testing.T) {
	// 255 characters in path components that are each valid: only the length
	// can refuse the longer one.
	long := strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127)
	if len(long) != berth.MaxRepositoryNameLength {
		t.Fatalf("len(long) = %d", len(long))
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"a/b", true},
		{"a/b/c/d", true},
		{"a-b", true},
		{"a---b", true},
		{"a_b", true},
		{"a__b", true},
		{"a.b", true},
		{"a.b/c_d", true},
		{"library/ubuntu", true},
		{"team-1/app.web/v2__x", true},
		{"a1b2/3c", true},
		{long, true},
		{strings.Repeat("a", 255), true},

		{"", false},
		{"A", false},
		{"Team/app", false},
		{"team/App", false},
		{"-a", false},
		{"a-", false},
		{"_a", false},
		{"a_", false},
		{".a", false},
		{"a.", false},
		{"/a", false},
		{"a/", false},
		{"a/b/", false},
		{"/", false},
		{"a//b", false},
		{"a___b", false},
		{"a_.b", false},
		{"a._b", false},
		{"a..b", false},
		{"a.-b", false},
		{"a-_b", false},
		{"a/-b", false},
		{"a/.b", false},
		{"a:b", false},
		{"a@b", false},
		{"a b", false},
		{"a\nb", false},
		{"a/b\n", false},
		{"é", false},
		{long + "c", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		err := berth.ValidateRepositoryName(tt.name)
		want := berth.Code("")
		if !tt.ok {
			want = berth.CodeNameInvalid
		}
		if got := berth.ErrorCode(err); got != want {
			t.Errorf("ValidateRepositoryName(%.40q) (len %d) code = %q, want %q", tt.name, len(tt.name), got, want)
		}
	}
}

func TestValidateTag(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.2.3", true},
		{"v1.2.3-rc.1_build-4", true},
		{"LATEST", true},
		{"a", true},
		{"0", true},
		{"_x", true},
		{"__", true},
		{"x.", true},
		{"x-", true},
		{"a" + strings.Repeat("-", 127), true},
		{strings.Repeat("a", 128), true},

		{"", false},
		{strings.Repeat("a", 129), false},
		{".x", false},
		{"-x", false},
		{".", false},
		{"-", false},
		{"a:b", false},
		{"a/b", false},
		{"a b", false},
		{"a+b", false},
		{"a@b", false},
		{"latest\n", false},
		{"ä", false},
		{"sha256:" + strings.Repeat("a", 64), false},
	}
	for _, tt := range tests {
		err := berth.ValidateTag(tt.tag)
		want := berth.Code("")
		if !tt.ok {
			want = berth.CodeTagInvalid
		}
		if got := berth.ErrorCode(err); got != want {
			t.Errorf("ValidateTag(%.40q) (len %d) code = %q, want %q", tt.tag, len(tt.tag), got, want)
		}
	}
}

func TestIsDigestReference(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{emptySHA256, true},
		{"sha256:abc", true}, // a digest reference, though not a valid digest
		{":", true},
		{"latest", false},
		{"v1.0", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := berth.IsDigestReference(tt.ref); got != tt.want {
			t.Errorf("IsDigestReference(%q) = %v, want %v", tt.ref, got, tt.want)
		}
		// A reference is a digest or a tag, never both.
		if tt.want && berth.ValidateTag(tt.ref) == nil {
			t.Errorf("%q is a valid tag and a digest reference", tt.ref)
		}
	}
}
