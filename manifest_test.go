package berth_test

import (
	"reflect"
	"testing"

	"github.com/berth-dev/berth"
)

// TestIndexManifests: an index names its manifests with their platforms,
// in its order; an image manifest names none.
func TestIndexManifests(t *testing.T) {
	amd := berth.DigestOf("sha256", []byte("amd64"))
	arm := berth.DigestOf("sha256", []byte("arm"))
	att := berth.DigestOf("sha256", []byte("attestation"))
	index := &berth.Manifest{
		MediaType: "application/vnd.oci.image.index.v1+json",
		Content: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + amd.String() + `","size":1,"platform":{"os":"linux","architecture":"amd64"}},` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + arm.String() + `","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + att.String() + `","size":1}]}`),
		References: []berth.Reference{{Digest: amd, Kind: berth.ReferenceManifest}, {Digest: arm, Kind: berth.ReferenceManifest}, {Digest: att, Kind: berth.ReferenceManifest}},
	}
	got := index.IndexManifests()
	want := []berth.IndexManifest{
		{Digest: amd, MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: &berth.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: arm, MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: &berth.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{Digest: att, MediaType: "application/vnd.oci.image.manifest.v1+json"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("IndexManifests = %+v, want %+v", got, want)
	}
	if s := got[0].Platform.String() + " " + got[1].Platform.String(); s != "linux/amd64 linux/arm/v7" {
		t.Errorf("platforms %q", s)
	}
	image := &berth.Manifest{
		MediaType:  "application/vnd.oci.image.manifest.v1+json",
		Content:    []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + amd.String() + `","size":1},"layers":[]}`),
		References: []berth.Reference{{Digest: amd, Kind: berth.ReferenceBlob}},
	}
	if got := image.IndexManifests(); got != nil {
		t.Errorf("an image manifest's IndexManifests = %+v", got)
	}
}
