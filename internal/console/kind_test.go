package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

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

// A page whose template fails halfway is answered as an internal error, not
// sent cut short with 200.
func TestRenderFailsWhole(t *testing.T) {
	w := httptest.NewRecorder()
	(&Handler{}).render(w, http.StatusOK, &view{Title: "Why not?", Data: 42})
	if body := w.Body.String(); w.Code != http.StatusInternalServerError || !strings.Contains(body, string(berth.CodeInternal)) || strings.Contains(body, `id="principal"`) {
		t.Fatalf("a failing template: %d\n%s", w.Code, body)
	}
}
