package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a leaf for 127.0.0.1 and localhost, with serial, to certFile
// and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The key first, then the certificate, each renamed into place, as a
	// renewal tool does.
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})}, {certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsClient trusts pool and speaks HTTP/2 when the server offers it; it
// opens a new connection for every request, so that each sees the
// certificate served at that moment.
func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true, DisableKeepAlives: true,
	}}
}

// TestServeTLSFiles: berth serve --tls-cert --tls-key serves HTTPS with
// HTTP/2, and a renewed certificate is served without a restart.
func TestServeTLSFiles(t *testing.T) {
	tlsCheckEvery = 0
	t.Cleanup(func() { tlsCheckEvery = time.Second })
	s, client, ca, certFile := serveWithTestCert(t)
	keyFile := filepath.Join(filepath.Dir(certFile), "key.pem")
	if s.url[:8] != "https://" {
		t.Fatalf("serve prints %s, want an https URL", s.url)
	}
	get := func() *http.Response {
		t.Helper()
		resp, err := client.Get(s.url + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusUnauthorized || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 100 {
		t.Fatalf("GET /v2/: %s %d, serial %d; want HTTP/2, 401, serial 100", resp.Proto, resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber)
	}
	// The challenge names the https realm, which the issuer follows.
	if realm := resp.Header.Get("WWW-Authenticate"); !strings.Contains(realm, `realm="`+s.url+`/oauth2/token"`) {
		t.Errorf("challenge %q does not name the https token endpoint", realm)
	}
	ca.issue(t, 200, certFile, keyFile)
	if resp := get(); resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 200 {
		t.Errorf("after renewal the server still serves serial %d, want 200", resp.TLS.PeerCertificates[0].SerialNumber)
	}
	// A half-written pair is not served: the last good one stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if resp := get(); resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 200 {
		t.Errorf("with broken files the server serves serial %d, want the last good 200", resp.TLS.PeerCertificates[0].SerialNumber)
	}
}

// TestServeTLSRefusals: TLS settings that cannot work are refused before
// anything starts.
func TestServeTLSRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--tls-cert", filepath.Join(dir, "cert.pem")},
		{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing-key.pem")},
	} {
		code, stdout, _ := runCLI(t, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "-o", "json"}, args...)...)
		if got := jsonErrorCode(t, stdout); code != 1 || got != "invalid" {
			t.Errorf("serve %v: exit %d, %q; want invalid", args, code, got)
		}
	}
}

// Over https the console's cookies are host-bound (__Host-, Secure, Path=/):
// the break-glass sign-in, the session and a page behind it work with them,
// and a session cookie planted without the prefix is not a session.
func TestConsoleOverHTTPSUsesHostCookies(t *testing.T) {
	s, client, _, _ := serveWithTestCert(t)
	id, secret := s.admin(t)
	b := newBrowser(t)
	b.c.Transport = client.Transport
	resp, page := consoleSignIn(t, s, b, id, secret)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Signed in as") {
		t.Fatalf("the console sign-in over https: %s\n%s", resp.Status, page)
	}
	u, _ := url.Parse(s.url)
	var names []string
	for _, c := range b.c.Jar.Cookies(u) {
		names = append(names, c.Name)
	}
	if !slices.Contains(names, "__Host-berth_session") || slices.Contains(names, "berth_session") {
		t.Fatalf("cookies over https: %v, want __Host-berth_session only", names)
	}
	// A session cookie without the prefix is not read.
	value := ""
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "__Host-berth_session" {
			value = c.Value
		}
	}
	planted := newBrowser(t)
	planted.c.Transport = client.Transport
	planted.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_session", Value: value}})
	planted.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := planted.get(s.url + "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a page with an unprefixed session cookie over https: %s, want the redirect to /signin", resp.Status)
	}
}

// serveWithTestCert runs berth serve with --tls-cert and --tls-key files a
// test CA issued (serial 100), and returns it with a client trusting the CA,
// the CA, and the certificate file (key.pem beside it).
func serveWithTestCert(t *testing.T) (*running, *http.Client, *testCA, string) {
	t.Helper()
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 100, certFile, keyFile)
	client := tlsClient(ca.pool)
	return startServeClient(t, nil, t.TempDir(), client, "--tls-cert", certFile, "--tls-key", keyFile), client, ca, certFile
}
