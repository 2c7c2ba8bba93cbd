package cli

import (
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/testtool"
)

// TestDeviceLoginOCIClients logs a person in by device code, then pushes
// with go-containerregistry (crane's library) and skopeo through the real
// docker-credential-berth binary, as that person: their group's push role,
// no secret anywhere.
func TestDeviceLoginOCIClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the berth binary")
	}
	// Found before HOME moves below: the tools folder is in the user's cache.
	skopeo, crane := testtool.Find(t, "skopeo"), testtool.Find(t, "crane")
	bin := buildBerthWithHelper(t)
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	env := loginPerson(t, s)
	host := strings.TrimPrefix(s.url, "http://")

	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HOME", env["HOME"])
	t.Setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
	t.Setenv("XDG_RUNTIME_DIR", env["HOME"])
	t.Setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
	t.Setenv("BERTH_CLIENT_ID", "")
	t.Setenv("BERTH_CLIENT_SECRET", "")

	ref, err := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2, random.WithSource(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	kc := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	if err := remote.Write(ref, img, kc); err != nil {
		t.Fatalf("push as the person through the credential helper: %v", err)
	}
	// Outside the group's scope the person's login is refused.
	other, _ := name.ParseReference(host+"/other/app:v1", name.Insecure)
	if err := remote.Write(other, img, kc); err == nil || !strings.Contains(err.Error(), "role_missing") {
		t.Fatalf("push outside the person's roles: %v", err)
	}
	want, _ := img.Digest()
	cmd := exec.Command(skopeo, "copy", "--authfile", filepath.Join(env["DOCKER_CONFIG"], "config.json"),
		"--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+host+"/team/app:v1", "docker://"+host+"/team/copy:v1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy as the person: %v\n%s", err, out)
	}
	copyRef, _ := name.ParseReference(host+"/team/copy:v1", name.Insecure)
	if d, err := remote.Head(copyRef, kc); err != nil || d.Digest != want {
		t.Errorf("skopeo's copy: %v %v, want %s", d, err, want)
	}
	// crane pushes as the person too, through the same helper.
	if out, err := exec.Command(crane, "copy", "--insecure", host+"/team/app:v1", host+"/team/crane:v1").CombinedOutput(); err != nil {
		t.Fatalf("crane copy as the person: %v\n%s", err, out)
	}
	craneRef, _ := name.ParseReference(host+"/team/crane:v1", name.Insecure)
	if d, err := remote.Head(craneRef, kc); err != nil || d.Digest != want {
		t.Errorf("crane's copy: %v %v, want %s", d, err, want)
	}
}
