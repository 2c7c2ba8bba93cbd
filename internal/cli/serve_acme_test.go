package cli

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testtool"
)

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPebble runs Let's Encrypt's test CA on loopback, validating
// tls-alpn-01 challenges on tlsPort (where berth listens), and returns its
// directory URL, the CA file its own HTTPS is signed with, and the roots of
// the certificates it issues.
func startPebble(t *testing.T, tlsPort int) (dirURL, caFile string, roots *x509.CertPool) {
	t.Helper()
	bin := testtool.Find(t, "pebble")
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 1, cert, key)
	acmePort, mgmtPort := freeLoopbackPort(t), freeLoopbackPort(t)
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", acmePort), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate": cert, "privateKey": key, "httpPort": freeLoopbackPort(t), "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	// pebble resolves the domain through pebble-challtestsrv's DNS, which
	// answers every A query with 127.0.0.1 (and AAAA with nothing).
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	runTool(t, testtool.Find(t, "pebble-challtestsrv"), filepath.Join(dir, "challtestsrv.log"), nil,
		"-dnsserver", dnsAddr, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-doh", "", "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)))
	runTool(t, bin, filepath.Join(dir, "pebble.log"),
		// Validate at once, never reject a good nonce: the test is about berth.
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", confFile, "-strict=false", "-dnsserver", dnsAddr)
	hc := tlsClient(ca.pool)
	dirURL = fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			roots = x509.NewCertPool()
			if resp.StatusCode == 200 && roots.AppendCertsFromPEM(b) {
				return dirURL, caFile, roots
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer within 15 s: %v", err)
		}
	}
}

// runTool starts bin with args and env (added to this process's), logging
// to logFile, and stops it when the test ends (showing the log if it failed).
func runTool(t *testing.T, bin, logFile string, env []string, args ...string) {
	t.Helper()
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s's log:\n%s", filepath.Base(bin), b)
		}
	})
}

// TestServeACME obtains berth's certificate from pebble, Let's Encrypt's
// test CA, end to end: berth answers the tls-alpn-01 challenge on its own
// port, then serves the issued certificate with HTTP/2; after a restart it
// serves the cached certificate with the CA gone.
func TestServeACME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble")
	}
	port := freeLoopbackPort(t)
	dirURL, caFile, roots := startPebble(t, port)
	data := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("tls:\n  acme:\n    domains: [berth.test]\n    email: ops@example.com\n    directory_url: %s\n    ca_file: %s\n", dirURL, caFile))
	client := tlsClient(roots)
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "berth.test"
	s := startServeClient(t, nil, data, client, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--config", cfg)

	check := func() {
		t.Helper()
		resp, err := client.Get(s.url + "/v2/")
		if err != nil {
			t.Fatalf("GET /v2/ over https: %v\n%s", err, s.stderr.String())
		}
		resp.Body.Close()
		leaf := resp.TLS.PeerCertificates[0]
		if resp.ProtoMajor != 2 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "berth.test" || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
			t.Fatalf("%s, certificate for %v issued by %q; want HTTP/2 and pebble's certificate for berth.test", resp.Proto, leaf.DNSNames, leaf.Issuer.CommonName)
		}
	}
	check()
	s.stop(t)
	if entries, _ := os.ReadDir(filepath.Join(data, "acme")); len(entries) < 2 {
		t.Errorf("the ACME cache holds %d entries, want the account key and the certificate", len(entries))
	}
	// The same port again, from the cache: no CA is asked.
	s = startServeClient(t, nil, data, client, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--config", cfg)
	check()
}
