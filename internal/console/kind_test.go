package console

import "testing"

func TestManifestKind(t *testing.T) {
	for _, c := range []struct{ media, artifact, want string }{
		{"application/vnd.oci.image.index.v1+json", "", "image index"},
		{"application/vnd.docker.distribution.manifest.list.v2+json", "", "image index"},
		{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json", "image"},
		{"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json", "image"},
		{"application/vnd.oci.image.manifest.v1+json", "application/vnd.example.sbom", "application/vnd.example.sbom"},
		{"application/vnd.oci.image.manifest.v1+json", "application/vnd.cncf.helm.config.v1+json", "application/vnd.cncf.helm.config.v1+json"},
		{"application/vnd.oci.artifact.manifest.v1+json", "", "application/vnd.oci.artifact.manifest.v1+json"},
	} {
		if got := manifestKind(c.media, c.artifact); got != c.want {
			t.Errorf("manifestKind(%q, %q) = %q, want %q", c.media, c.artifact, got, c.want)
		}
	}
}
