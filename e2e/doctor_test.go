package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The tests in this file run berth doctor against Debian's docker-registry
// (CNCF Distribution): anonymous, and with htpasswd Basic authentication and
// a good, a wrong and a missing password.

// startDistribution starts /usr/bin/docker-registry on a free loopback port,
// with htpasswd authentication when users is not empty (user → password),
// and returns its address. It stops at the end of the test.
func startDistribution(t *testing.T, users map[string]string) string {
	t.Helper()
	addr, _ := runDistribution(t, users)
	return addr
}

// runDistribution is startDistribution that also returns stop, which
// stops the registry before the test ends (and may be called again).
func runDistribution(t *testing.T, users map[string]string) (addr string, stop func()) {
	t.Helper()
	needServer(t)
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
		if strict {
			t.Fatal("BERTH_E2E=1 but /usr/bin/docker-registry is missing (run .ci/run)")
		}
		t.Skip("/usr/bin/docker-registry is not installed")
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: berth-e2e-doctor\n",
		filepath.Join(dir, "storage"), addr)
	if len(users) > 0 {
		var lines []string
		for u, p := range users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, u+":"+string(h))
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-e2e\n    path: %s\n", htpasswd)
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			log.Close()
		})
	}
	t.Cleanup(stop)
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("docker-registry exited at start:\n%s", b)
		default:
		}
		if resp, err := client.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr, stop
		}
	}
	t.Fatal("docker-registry did not answer within 30s")
	return "", nil
}

// doctorReport is berth doctor -o json.
type doctorReport struct {
	Registry string
	OK       bool
	Checks   []struct {
		Name, Status, Message, Hint, Explain string
	}
}

// doctorAs runs berth doctor -o json with a docker configuration holding
// auths (host → user:password; none when empty) and returns its report.
func doctorAs(t *testing.T, auths map[string]string, args ...string) doctorReport {
	t.Helper()
	home := t.TempDir()
	dockerDir := filepath.Join(home, ".docker")
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries := map[string]any{}
	for host, up := range auths {
		entries[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(up))}
	}
	b, _ := json.Marshal(map[string]any{"auths": entries})
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	o := cmdOpts{env: []string{"HOME=" + home, "DOCKER_CONFIG=" + dockerDir, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + home, "REGISTRY_AUTH_FILE=", "BERTH_URL=", "BERTH_CLIENT_ID=", "BERTH_CLIENT_SECRET="}}
	stdout, stderr, err := runWith(t, o, berthBin, append([]string{"doctor", "-o", "json"}, args...)...)
	var rep doctorReport
	if jerr := json.Unmarshal([]byte(stdout), &rep); jerr != nil {
		t.Fatalf("berth doctor %v: %v, not JSON: %v\n%s\n%s", args, err, jerr, stdout, stderr)
	}
	if (err == nil) != rep.OK {
		t.Errorf("berth doctor %v: exit %v with ok %v", args, err, rep.OK)
	}
	return rep
}

// wantChecks compares the report's checks, name:status, in order.
func wantChecks(t *testing.T, rep doctorReport, want ...string) {
	t.Helper()
	var got []string
	for _, c := range rep.Checks {
		got = append(got, c.Name+":"+c.Status)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("checks\n got %v\nwant %v\n%+v", got, want, rep.Checks)
	}
}

func check(rep doctorReport, name string) (c struct{ Name, Status, Message, Hint, Explain string }) {
	for _, x := range rep.Checks {
		if x.Name == name {
			return x
		}
	}
	return c
}

func TestDoctorDistributionAnonymous(t *testing.T) {
	needBerth(t)
	crane := tool(t, "crane")
	addr := startDistribution(t, nil)
	src, _ := writeRandomLayout(t, "v1")
	mustRunWith(t, cmdOpts{env: []string{"DOCKER_CONFIG=" + t.TempDir()}}, crane, "push", "--insecure", src, addr+"/team/app:latest")

	rep := doctorAs(t, nil, addr, "--repository", "team/app")
	if !rep.OK || rep.Registry != "distribution" {
		t.Errorf("ok %v, registry %q", rep.OK, rep.Registry)
	}
	wantChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:warn", "manifest:ok", "clock:ok", "berth-only:skip")
	if c := check(rep, "challenge"); !strings.Contains(c.Message, "anonymous") {
		t.Errorf("challenge: %+v", c)
	}
	// A tag that is not there: the registry answered, so only a warning.
	rep = doctorAs(t, nil, addr, "--repository", "team/app", "--reference", "v9")
	if c := check(rep, "manifest"); !rep.OK || c.Status != "warn" || c.Explain != "registry-manifest-unknown" {
		t.Errorf("missing tag: ok %v, %+v", rep.OK, c)
	}
}

func TestDoctorDistributionHtpasswd(t *testing.T) {
	needBerth(t)
	crane := tool(t, "crane")
	addr := startDistribution(t, map[string]string{"ci": "good-password"})
	env := craneLogin(t, crane, &server{addr: addr}, "ci", "good-password")
	src, _ := writeRandomLayout(t, "v1")
	mustRunWith(t, cmdOpts{env: env}, crane, "push", "--insecure", src, addr+"/team/app:latest")

	rep := doctorAs(t, map[string]string{addr: "ci:good-password"}, addr, "--repository", "team/app", "--action", "push")
	if !rep.OK {
		t.Errorf("good password: not ok")
	}
	wantChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "login:ok", "expiry:skip", "manifest:ok", "upload:ok", "clock:ok", "berth-only:skip")
	if c := check(rep, "challenge"); !strings.Contains(c.Message, "Basic") {
		t.Errorf("challenge: %+v", c)
	}

	rep = doctorAs(t, map[string]string{addr: "ci:wrong-password"}, addr, "--repository", "team/app")
	wantChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "login:fail", "manifest:fail", "clock:ok", "berth-only:skip")
	if c := check(rep, "login"); rep.OK || c.Explain != "registry-unauthorized" || c.Hint == "" {
		t.Errorf("wrong password: %+v", c)
	}

	rep = doctorAs(t, nil, addr, "--repository", "team/app")
	wantChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:warn", "login:fail", "manifest:fail", "clock:ok", "berth-only:skip")
	if c := check(rep, "login"); rep.OK || !strings.Contains(c.Hint, "docker login "+addr) {
		t.Errorf("missing password: %+v", c)
	}
}
