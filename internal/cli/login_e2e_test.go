package cli

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestLoginOCIClients logs in with berth login, then pushes and pulls with
// go-containerregistry (crane's library) and skopeo through the real
// docker-credential-berth binary found on PATH, with no other credentials.
func TestLoginOCIClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the berth binary")
	}
	bin := buildBerthWithHelper(t)

	// The server's clock, moved forward below to expire the first tokens.
	offset := moveServeClock(t)
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	host := strings.TrimPrefix(s.url, "http://")
	home := t.TempDir()
	cfgHome, dockerDir := filepath.Join(home, "config"), filepath.Join(home, "docker")
	env := map[string]string{"XDG_CONFIG_HOME": cfgHome, "DOCKER_CONFIG": dockerDir, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	if code, _, stderr := runCLI(t, env, "login", host); code != 0 {
		t.Fatalf("berth login: %d %s", code, stderr)
	}

	// What the clients run sees only the docker configuration and the helper.
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("XDG_RUNTIME_DIR", home)
	t.Setenv("DOCKER_CONFIG", dockerDir)
	t.Setenv("BERTH_CLIENT_ID", "")
	t.Setenv("BERTH_CLIENT_SECRET", "")

	ref, err := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2, random.WithSource(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	kc := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	// One puller keeps its access token between requests, as a long job does.
	puller, err := remote.NewPuller(kc)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, kc); err != nil {
		t.Fatalf("push with the credential helper: %v", err)
	}
	got, err := remote.Image(ref, remote.Reuse(puller))
	if err != nil {
		t.Fatalf("pull with the credential helper: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, pushed %s", d, want)
	}

	// Past the access token's 15 minutes (and the verifier's leeway), the
	// same client gets a new token from the stored refresh token by itself.
	offset.Store(int64(20 * time.Minute))
	if _, err := remote.Image(ref, remote.Reuse(puller)); err != nil {
		t.Fatalf("pull after the first access token expired: %v", err)
	}
	for _, tool := range []struct {
		name string
		args []string
	}{
		{"crane", []string{"copy", "--insecure", host + "/team/app:v1", host + "/team/crane:v1"}},
		{"oras", []string{"copy", "--from-plain-http", "--to-plain-http", host + "/team/app:v1", host + "/team/oras:v1"}},
	} {
		path, err := exec.LookPath(tool.name)
		if err != nil {
			if os.Getenv("BERTH_E2E") == "1" {
				t.Fatalf("BERTH_E2E=1 and %s is not installed", tool.name)
			}
			t.Logf("%s is not installed; skipping its part", tool.name)
			continue
		}
		if out, err := exec.Command(path, tool.args...).CombinedOutput(); err != nil {
			t.Fatalf("%s with the credential helper after the first token expired: %v\n%s", tool.name, err, out)
		}
		copied, _ := name.ParseReference(tool.args[len(tool.args)-1], name.Insecure)
		if d, err := remote.Head(copied, kc); err != nil || d.Digest != want {
			t.Errorf("%s's copy: %v %v, want %s", tool.name, d, err, want)
		}
	}

	defer func() {
		// Without the login the same pull is refused: the helper was the credential.
		if code, _, stderr := runCLI(t, env, "logout", host); code != 0 {
			t.Fatalf("berth logout: %d %s", code, stderr)
		}
		if _, err := remote.Image(ref, kc); err == nil {
			t.Errorf("pull after berth logout succeeded")
		}
	}()

	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("BERTH_E2E") == "1" {
			t.Fatal("BERTH_E2E=1 and skopeo is not installed")
		}
		t.Log("skopeo is not installed; skipping its part")
		return
	}
	cmd := exec.Command(skopeo, "copy", "--authfile", filepath.Join(dockerDir, "config.json"),
		"--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+host+"/team/app:v1", "docker://"+host+"/team/copy:v1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy with the credential helper: %v\n%s", err, out)
	}
	copyRef, _ := name.ParseReference(host+"/team/copy:v1", name.Insecure)
	if d, err := remote.Head(copyRef, kc); err != nil || d.Digest != want {
		t.Errorf("skopeo's copy: %v %v, want %s", d, err, want)
	}
}

// buildBerthWithHelper builds the berth binary into a new folder beside a
// docker-credential-berth link to it, as berth login sets up, and returns
// the folder (for PATH).
func buildBerthWithHelper(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "berth"), "github.com/berth-dev/berth/cmd/berth")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Symlink("berth", filepath.Join(bin, "docker-credential-berth")); err != nil {
		t.Fatal(err)
	}
	return bin
}
