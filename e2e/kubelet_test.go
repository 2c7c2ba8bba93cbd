//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	credentialprovider "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/berth-dev/berth/internal/oidctest"
)

// The tests in this file stand for a Kubernetes node: the kubelet runs
// berth as its image credential provider with a pod's service-account token
// (minted by the test issuer in the API server's shape), and the credential
// it answers with pulls the image with containerd, Debian's, started by the
// test with its own root, state and socket; and a cluster without the
// provider uses berth pull-secret's Secret as a docker config, with skopeo.

// kubeletSetup registers, as the initial admin, the principal puller with
// pull on team/*, the pipeline apps (every service account of the namespace
// apps, from the test issuer), and the federated connection cluster acting as
// puller, which permits apps; it pushes a linux image of this machine's
// architecture to team/web:v1 and returns its digest and the registry's
// service name, the audience the kubelet requests the token for.
func kubeletSetup(t *testing.T, s *server, iss *oidctest.Issuer) (digest, service string) {
	t.Helper()
	asAdmin(t, s, "principal", "create", "puller")
	asAdmin(t, s, "role", "assign", "--principal", "puller", "--role", "pull", "--scope", "team/*")
	asAdmin(t, s, "pipeline", "create", "apps", "--kubernetes-namespace", "apps", "--issuer", iss.URL)
	asAdmin(t, s, "connection", "create", "cluster", "--principal", "puller")
	asAdmin(t, s, "connection", "authorize", "cluster", "--pipeline", "apps")
	img := withPlatform(t, randomOCIImage(t, 2, 64<<10), "linux", runtime.GOARCH)
	if err := remote.Write(s.ref(t, "team/web:v1"), img, s.remoteOpts(context.Background())...); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, rest, _ := strings.Cut(resp.Header.Get("WWW-Authenticate"), `service="`)
	service, _, _ = strings.Cut(rest, `"`)
	if service == "" {
		t.Fatalf("/v2/ challenge %q names no service", resp.Header.Get("WWW-Authenticate"))
	}
	return digestOf(t, img).String(), service
}

// runProvider runs berth under the name the kubelet knows it by, as the
// kubelet does: the request on stdin, the given arguments, and an
// environment holding nothing but PATH and HOME, so no BERTH_ variable. It
// returns the decoded response, or the refusal on stderr.
func runProvider(t *testing.T, bin, home string, req *credentialprovider.CredentialProviderRequest, args ...string) (*credentialprovider.CredentialProviderResponse, string, error) {
	t.Helper()
	req.APIVersion, req.Kind = credentialprovider.SchemeGroupVersion.String(), "CredentialProviderRequest"
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the kubelet's limit
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home}
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, errOut.String(), err
	}
	var resp credentialprovider.CredentialProviderResponse
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil || resp.APIVersion != credentialprovider.SchemeGroupVersion.String() || resp.Kind != "CredentialProviderResponse" {
		t.Fatalf("the provider answered %q: %v", out.String(), err)
	}
	return &resp, errOut.String(), nil
}

// containerd is a containerd daemon the test started, with everything of its
// own under one temporary folder.
type containerd struct {
	ctr, socket string
}

// startContainerd starts Debian's containerd as root with its own root,
// state and socket, and stops it at the end of the test.
func startContainerd(t *testing.T) containerd {
	t.Helper()
	bin, ctr := tool(t, "containerd"), tool(t, "ctr")
	if os.Geteuid() != 0 {
		if strict {
			t.Fatal("BERTH_E2E=1 but containerd needs root, and the tests do not run as root")
		}
		t.Skip("containerd needs root")
	}
	// A short folder: the socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), socket, socket+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
		os.RemoveAll(dir)
	})
	c := containerd{ctr: ctr, socket: socket}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, _, err := runWith(t, cmdOpts{}, ctr, "--address", socket, "version"); err == nil {
			return c
		}
		select {
		case <-done:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("containerd exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("containerd did not answer within 30 s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pull runs ctr images pull, as the CRI plugin pulls for the kubelet, with
// the user and password given (none when user is ""), unpacking with the
// native snapshotter, which needs no mount.
func (c containerd) pull(t *testing.T, ref, user, password string) (string, error) {
	t.Helper()
	args := []string{"--address", c.socket, "images", "pull", "--plain-http", "--snapshotter", "native"}
	if user != "" {
		args = append(args, "--user", user+":"+password)
	}
	stdout, stderr, err := runWith(t, cmdOpts{}, c.ctr, append(args, ref)...)
	return stdout + stderr, err
}

// digest returns the digest containerd recorded for the image ref.
func (c containerd) digest(t *testing.T, ref string) string {
	t.Helper()
	out := mustRunWith(t, cmdOpts{}, c.ctr, "--address", c.socket, "images", "ls")
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == ref {
			return f[2]
		}
	}
	t.Fatalf("ctr images ls does not list %s:\n%s", ref, out)
	return ""
}

// TestKubeletProviderContainerd: berth run as berth-kubelet-credential-provider,
// with no argument and no BERTH_ variable, answers the kubelet's request for a
// pod of the namespace apps with a credential that containerd pulls the
// image with; without it containerd is refused. Run again with the same
// token, as berth kubelet-credential-provider, it answers with the same login.
// A service account the connection does not permit is refused on one line
// with its reason.
func TestKubeletProviderContainerd(t *testing.T) {
	needBerth(t)
	ctrd := startContainerd(t)
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	want, service := kubeletSetup(t, s, iss)
	asAdmin(t, s, "pipeline", "create", "ghost", "--kubernetes", "other/ghost", "--issuer", iss.URL)

	bin := filepath.Join(t.TempDir(), "berth-kubelet-credential-provider")
	if err := os.Symlink(berthBin, bin); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	image := s.addr + "/team/web:v1"
	token := iss.Kubernetes(oidctest.KubernetesPod{Namespace: "apps", ServiceAccount: "web", Pod: "web-5f7b", Audience: service})
	req := &credentialprovider.CredentialProviderRequest{Image: image, ServiceAccountToken: token,
		ServiceAccountAnnotations: map[string]string{"berth.dev/connection": "cluster"}}
	resp, stderr, err := runProvider(t, bin, home, req)
	if err != nil {
		t.Fatalf("the provider: %v\n%s", err, stderr)
	}
	auth, ok := resp.Auth[s.addr]
	if !ok || resp.CacheKeyType != credentialprovider.RegistryPluginCacheKeyType || resp.CacheDuration == nil ||
		resp.CacheDuration.Duration < 5*time.Hour || resp.CacheDuration.Duration > 6*time.Hour {
		t.Fatalf("response %+v: want a credential for %s cached by registry for the session", resp, s.addr)
	}

	if out, err := ctrd.pull(t, image, "", ""); err == nil {
		t.Fatalf("containerd pulled without credentials:\n%s", out)
	}
	if out, err := ctrd.pull(t, image, auth.Username, auth.Password); err != nil {
		t.Fatalf("containerd pull with the provider's credential: %v\n%s", err, out)
	}
	if got := ctrd.digest(t, image); got != want {
		t.Errorf("containerd pulled %s, pushed %s", got, want)
	}

	again, stderr, err := runProvider(t, berthBin, home, req, "kubelet-credential-provider")
	if err != nil || again.Auth[s.addr] != auth {
		t.Errorf("berth kubelet-credential-provider with the same token: %v, %s; want the same login", err, stderr)
	}

	req.ServiceAccountToken = iss.Kubernetes(oidctest.KubernetesPod{Namespace: "other", ServiceAccount: "ghost", Audience: service})
	_, stderr, err = runProvider(t, bin, home, req)
	line := strings.TrimSpace(stderr)
	if err == nil || strings.Contains(line, "\n") || !strings.HasPrefix(line, "pipeline_not_authorized: ") ||
		!strings.Contains(line, "; berth connection permit cluster --pipeline ghost") {
		t.Errorf("a service account not permitted: %v, stderr %q", err, stderr)
	}
	if strings.Contains(s.logAll(), token) || strings.Contains(s.logAll(), auth.Password) {
		t.Error("the server log holds the service-account token or the login")
	}
}

// TestPullSecretSkopeo: the Secret berth pull-secret prints, used as a docker
// config, lets skopeo inspect the image, and its secret is listed by berth
// secret list --expiring-within with the expiry its annotation carries.
func TestPullSecretSkopeo(t *testing.T) {
	needBerth(t)
	skopeo := tool(t, "skopeo")
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	want, _ := kubeletSetup(t, s, iss)

	var m struct {
		Kind     string `json:"kind"`
		Type     string `json:"type"`
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	out := asAdmin(t, s, "pull-secret", "berth-pull", "--connection", "cluster", "--namespace", "apps", "--expires-in", "30d", "-o", "json")
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Kind != "Secret" || m.Type != "kubernetes.io/dockerconfigjson" {
		t.Fatalf("berth pull-secret -o json: %v", err)
	}
	cfg, err := base64.StdEncoding.DecodeString(m.Data[".dockerconfigjson"])
	if err != nil {
		t.Fatal(err)
	}
	authfile := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(authfile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	o := cmdOpts{env: []string{"REGISTRY_AUTH_FILE=" + filepath.Join(t.TempDir(), "none.json")}}
	ref := "docker://" + s.addr + "/team/web:v1"
	if _, _, err := runWith(t, o, skopeo, "inspect", "--raw", "--tls-verify=false", ref); err == nil {
		t.Fatal("skopeo inspected the image without credentials")
	}
	raw := mustRunWith(t, o, skopeo, "inspect", "--raw", "--tls-verify=false", "--authfile", authfile, ref)
	if got := sha256Digest([]byte(raw)); got != want {
		t.Errorf("skopeo inspected %s, pushed %s", got, want)
	}

	var list []struct {
		ID          string    `json:"id"`
		Description string    `json:"description"`
		Expires     time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(asAdmin(t, s, "secret", "list", "--expiring-within", "31d", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	annotated, err := time.Parse(time.RFC3339, m.Metadata.Annotations["berth.dev/expires-at"])
	if len(list) != 1 || list[0].ID != m.Metadata.Annotations["berth.dev/secret-id"] || err != nil || !list[0].Expires.Truncate(time.Second).Equal(annotated) ||
		!strings.Contains(list[0].Description, "apps/berth-pull") {
		t.Errorf("secret list --expiring-within 31d: %+v; annotations %v", list, m.Metadata.Annotations)
	}
}
