package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// The pull-through cache against real upstreams: Debian's docker-registry
// (CNCF Distribution 2.8) with htpasswd Basic authentication, and a second
// berth, whose Docker token authentication the cache passes as a service
// principal. Clients pull through the cache with skopeo, crane, podman
// and go-containerregistry.

// createUpstream runs berth upstream create as the admin of s, the
// password on stdin, and fails the test when it fails.
func createUpstream(t *testing.T, s *server, password string, args ...string) {
	t.Helper()
	id, secret := s.adminCreds(t)
	home := t.TempDir()
	stdout, stderr, err := runWith(t, cmdOpts{stdin: password + "\n", env: []string{
		"BERTH_URL=http://" + s.addr, "BERTH_CLIENT_ID=" + id, "BERTH_CLIENT_SECRET=" + secret,
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
	}}, berthBin, append([]string{"upstream", "create"}, args...)...)
	if err != nil {
		t.Fatalf("berth upstream create %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
}

// pushTo writes a random image to ref on a registry with auth.
func pushTo(t *testing.T, ref string, auth authn.Authenticator) v1.Hash {
	t.Helper()
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// pullValid pulls ref from s with go-containerregistry, reads every blob
// (validate checks each digest) and returns the image's digest.
func pullValid(t *testing.T, s *server, ref string) (v1.Hash, error) {
	t.Helper()
	img, err := remote.Image(s.ref(t, ref), remote.WithAuth(s.auth()))
	if err != nil {
		return v1.Hash{}, err
	}
	if err := validate.Image(img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

func TestCacheDistributionUpstream(t *testing.T) {
	needBerth(t)
	skopeo := tool(t, "skopeo")
	addr, stopUpstream := runDistribution(t, map[string]string{"mirror": "pw-good-7QxT"})
	upAuth := &authn.Basic{Username: "mirror", Password: "pw-good-7QxT"}
	want := pushTo(t, addr+"/team/app:v1", upAuth)
	pushTo(t, addr+"/team/other:v1", upAuth)

	s := startServer(t, t.TempDir())
	createUpstream(t, s, "pw-good-7QxT", "dist", "--url", "http://"+addr, "--namespace", "dist", "--username", "mirror", "--password-stdin")
	createUpstream(t, s, "wrong", "distbad", "--url", "http://"+addr, "--namespace", "distbad", "--username", "mirror", "--password-stdin")
	asAdmin(t, s, "upstream", "verify", "dist")

	// skopeo pulls the whole image through the cache.
	id, secret := s.adminCreds(t)
	out := t.TempDir()
	run(t, "", skopeo, "copy", "--src-tls-verify=false", "--src-creds", id+":"+secret,
		"docker://"+s.addr+"/dist/team/app:v1", "oci:"+filepath.Join(out, "layout")+":v1")
	raw := run(t, "", skopeo, "inspect", "--tls-verify=false", "--creds", id+":"+secret, "docker://"+s.addr+"/dist/team/app:v1")
	var info struct{ Digest string }
	if err := json.Unmarshal([]byte(raw), &info); err != nil || info.Digest != want.String() {
		t.Fatalf("skopeo inspect through the cache: digest %q, want %s (%v)", info.Digest, want, err)
	}
	if d, err := pullValid(t, s, "dist/team/app:v1"); err != nil || d != want {
		t.Fatalf("pull through the cache: %s, %v", d, err)
	}

	// crane (a subtest: it skips where crane is not installed, unless
	// BERTH_E2E=1) fills the cache with another image.
	wantCrane := pushTo(t, addr+"/team/crane:v1", upAuth)
	t.Run("crane", func(t *testing.T) {
		crane := tool(t, "crane")
		o := cmdOpts{env: craneLogin(t, crane, s, id, secret)}
		pulled := filepath.Join(t.TempDir(), "pulled")
		mustRunWith(t, o, crane, "pull", "--insecure", "--format", "oci", s.addr+"/dist/team/crane:v1", pulled)
		if got := onlyManifestDigest(t, pulled); got != wantCrane {
			t.Errorf("crane pull through the cache: %s, want %s", got, wantCrane)
		}
	})

	// podman (skipped where it is not installed, unless BERTH_E2E=1) pulls
	// a third image into a store of its own: vfs, no daemon, no mounts.
	wantPodman := pushTo(t, addr+"/team/podman:v1", upAuth)
	t.Run("podman", func(t *testing.T) {
		podman := tool(t, "podman")
		dir := t.TempDir()
		run, err := os.MkdirTemp("", "podman") // podman takes a runroot of 50 characters at most
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(run) })
		global := []string{"--root", filepath.Join(dir, "root"), "--runroot", run,
			"--storage-driver", "vfs", "--events-backend", "none"}
		o := cmdOpts{env: []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, ".config"), "XDG_RUNTIME_DIR=" + run}}
		ref := s.addr + "/dist/team/podman:v1"
		mustRunWith(t, o, podman, append(global, "pull", "--tls-verify=false", "--creds", id+":"+secret, ref)...)
		got := strings.TrimSpace(mustRunWith(t, o, podman, append(global, "image", "inspect", "--format", "{{.Digest}}", ref)...))
		if got != wantPodman.String() {
			t.Errorf("podman pull through the cache: %s, want %s", got, wantPodman)
		}
	})

	// The wrong password: the refusal names the upstream and its code.
	if _, err := pullValid(t, s, "distbad/team/app:v1"); err == nil || !strings.Contains(err.Error(), "upstream_auth_failed") || !strings.Contains(err.Error(), "upstream distbad") {
		t.Errorf("pull through a wrong upstream password: %v", err)
	}
	_, stderr, err := berthCLI(t, s, id, secret, "upstream", "verify", "distbad")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, "upstream_auth_failed") {
		t.Errorf("berth upstream verify distbad: %v, %s", err, stderr)
	}

	// The upstream stops: the cached image still pulls, an uncached one is
	// refused as unreachable, naming the upstream.
	stopUpstream()
	if d, err := pullValid(t, s, "dist/team/app:v1"); err != nil || d != want {
		t.Fatalf("cached pull while the upstream is down: %s, %v", d, err)
	}
	_, err = pullValid(t, s, "dist/team/other:v1")
	if err == nil || !strings.Contains(err.Error(), "upstream_unreachable") || !strings.Contains(err.Error(), "upstream dist") {
		t.Errorf("uncached pull while the upstream is down: %v", err)
	}
}

func TestCacheBerthUpstream(t *testing.T) {
	needBerth(t)
	up := startServer(t, t.TempDir())
	want := pushTo(t, up.addr+"/team/base:1", up.auth())
	mirror := newPrincipal(t, up, "mirror", "pull", "team/*")

	s := startServer(t, t.TempDir())
	createUpstream(t, s, mirror.secret, "corp", "--url", "http://"+up.addr, "--namespace", "corp", "--username", mirror.clientID, "--password-stdin")
	asAdmin(t, s, "upstream", "verify", "corp", "--repository", "team/base")
	if d, err := pullValid(t, s, "corp/team/base:1"); err != nil || d != want {
		t.Fatalf("pull through a berth upstream: %s, %v", d, err)
	}
	// The principal may pull team/* only: anything else is the upstream's
	// refusal, passed on with its reason.
	pushTo(t, up.addr+"/private/x:1", up.auth())
	if _, err := pullValid(t, s, "corp/private/x:1"); err == nil || !strings.Contains(err.Error(), "upstream_auth_failed") || !strings.Contains(err.Error(), "upstream corp") {
		t.Errorf("pull of what the upstream principal may not read: %v", err)
	}
	if strings.Contains(s.logAll(), mirror.secret) {
		t.Error("the server log holds the upstream credential")
	}
}

// TestCacheAnonymousDistributionUpstream: docker-registry without
// authentication, pulled through anonymously (no credential stored).
func TestCacheAnonymousDistributionUpstream(t *testing.T) {
	needBerth(t)
	addr := startDistribution(t, nil)
	want := pushTo(t, addr+"/team/app:v1", authn.Anonymous)
	s := startServer(t, t.TempDir())
	asAdmin(t, s, "upstream", "create", "open", "--url", "http://"+addr, "--namespace", "open")
	out := asAdmin(t, s, "upstream", "show", "open", "-o", "json")
	if !strings.Contains(out, `"has_password": false`) {
		t.Errorf("upstream show: %s", out)
	}
	asAdmin(t, s, "upstream", "verify", "open")
	if d, err := pullValid(t, s, "open/team/app:v1"); err != nil || d != want {
		t.Fatalf("pull through an anonymous upstream: %s, %v", d, err)
	}
}
