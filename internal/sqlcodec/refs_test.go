package sqlcodec_test

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlcodec"
)

func TestReferences(t *testing.T) {
	refs := []berth.Reference{
		{Kind: berth.ReferenceBlob, Digest: "sha256:aa"},
		{Kind: berth.ReferenceManifest, Digest: "sha256:bb"},
	}
	s, err := sqlcodec.EncodeReferences(refs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sqlcodec.DecodeReferences(s)
	if err != nil || !slices.Equal(got, refs) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, err := sqlcodec.DecodeReferences(""); err != nil || got != nil {
		t.Errorf("none: %+v, %v", got, err)
	}
	for _, bad := range [][]berth.Reference{
		{{Kind: "layer", Digest: "sha256:aa"}},
		{{Kind: berth.ReferenceBlob, Digest: "sha256:a a"}},
		{{Kind: berth.ReferenceBlob}},
	} {
		if _, err := sqlcodec.EncodeReferences(bad); err == nil {
			t.Errorf("EncodeReferences(%+v) accepted it", bad)
		}
	}
	if _, err := sqlcodec.DecodeReferences("blob"); err == nil {
		t.Error("a malformed line was read")
	}
}
