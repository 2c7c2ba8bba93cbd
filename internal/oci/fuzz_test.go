package oci

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// Fuzz targets of what /v2/ reads from any caller: the path, Content-Range,
// and manifests and indexes. Seed corpora in testdata/fuzz; .ci/run runs each
// for a fixed time.

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/_catalog", "/v2/team/app/manifests/latest", "/v2/a/b/c/blobs/uploads/", "/v2/a/blobs/uploads/id-1",
		"/v2/a/tags/list", "/v2/a/referrers/sha256:" + strings.Repeat("0", 64), "/v2/blobs/uploads/", "/v2/a/manifests/", "/v2//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt := parseRoute(path)
		if rt.Kind == kindNone && (rt.Repo != "" || rt.Ref != "") {
			t.Fatalf("%q: no endpoint, but %+v", path, rt)
		}
		if rt.Repo != "" && !strings.Contains(path, rt.Repo) {
			t.Fatalf("%q: repository %q is not in the path", path, rt.Repo)
		}
		if strings.Contains(rt.Ref, "/") {
			t.Fatalf("%q: reference %q holds a slash", path, rt.Ref)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "0-49", "bytes=10-20", "bytes 0-1/50", "5-4", "-1-2", "9223372036854775807-9223372036854775807", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err != nil {
			if !berth.IsCode(err, berth.CodeRangeInvalid) {
				t.Fatalf("code %s", berth.ErrorCode(err))
			}
			return
		}
		if start < 0 || end < start {
			t.Fatalf("%q: %d-%d", s, start, end)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2}`
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfg + `,"layers":[` + cfg + `]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + cfg + `]}`,
		`{"schemaVersion":2,"config":` + cfg + `,"subject":` + cfg + `}`,
		`{"schemaVersion":2,"manifests":[]} trailing`,
		`{"schemaVersion":1}`, `[]`, ``,
	} {
		f.Add("", []byte(s))
	}
	f.Add("application/vnd.docker.distribution.manifest.v2+json", []byte(`{"schemaVersion":2,"config":`+cfg+`}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, sizes, err := parseManifest(contentType, body)
		if err != nil {
			if be := berth.AsError(err); be == nil {
				t.Fatalf("not a *berth.Error: %v", err)
			}
			return
		}
		if string(m.Content) != string(body) || m.MediaType == "" {
			t.Fatalf("manifest %+v", m)
		}
		for _, r := range m.References {
			if _, err := berth.ParseDigest(r.Digest.String()); err != nil {
				t.Fatalf("reference %q: %v", r.Digest, err)
			}
			if sizes[r.Digest] < 0 {
				t.Fatalf("negative size for %s", r.Digest)
			}
		}
	})
}
