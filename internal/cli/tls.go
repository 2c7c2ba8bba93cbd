package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/server"
)

// TLSConfig makes berth serve HTTPS, with HTTP/2: from certificate files
// (CertFile and KeyFile, PEM, reloaded when they change), or with
// certificates it obtains and renews itself over ACME. Docker and the
// kubelet refuse plain HTTP to anything but loopback, so any other
// deployment needs one of them (or a TLS-terminating proxy in front).
type TLSConfig struct {
	CertFile string     `yaml:"cert_file"`
	KeyFile  string     `yaml:"key_file"`
	ACME     ACMEConfig `yaml:"acme"`
}

// ACMEConfig obtains certificates for Domains from an ACME CA (RFC 8555):
// Let's Encrypt unless DirectoryURL names another. The CA checks each domain
// with the tls-alpn-01 challenge, on port 443 of the domain, which berth
// answers itself: it must listen there (--addr :443). Accounts and
// certificates are kept in CacheDir (DATA/acme by default; each replica
// keeps its own).
type ACMEConfig struct {
	Domains      []string `yaml:"domains"`
	Email        string   `yaml:"email"`
	DirectoryURL string   `yaml:"directory_url"`
	// CAFile is a PEM bundle that signs DirectoryURL's certificate, for a
	// private ACME CA (step-ca, or a test CA); empty trusts the system's.
	CAFile   string `yaml:"ca_file"`
	CacheDir string `yaml:"cache_dir"`
}

func (t TLSConfig) validate() error {
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return berth.Errorf(berth.CodeInvalid, "TLS needs both a certificate file and its key, and only one is set").
			WithHint("berth serve --tls-cert cert.pem --tls-key key.pem (or tls.cert_file and tls.key_file)")
	case t.CertFile != "" && len(t.ACME.Domains) > 0:
		return berth.Errorf(berth.CodeInvalid, "tls sets both certificate files and acme; choose one").
			WithHint("remove tls.acme to serve the files, or tls.cert_file and tls.key_file to use ACME")
	case len(t.ACME.Domains) == 0 && (t.ACME.Email != "" || t.ACME.DirectoryURL != "" || t.ACME.CAFile != "" || t.ACME.CacheDir != ""):
		return berth.Errorf(berth.CodeInvalid, "tls.acme names no domains").
			WithHint("tls: {acme: {domains: [registry.example.com], email: ops@example.com}}")
	}
	for _, d := range t.ACME.Domains {
		if d == "" || strings.ContainsAny(d, "/: *") {
			return berth.Errorf(berth.CodeInvalid, "tls.acme.domains holds %q, which is not a host name", d).
				WithHint("list host names only, such as registry.example.com")
		}
	}
	if u := t.ACME.DirectoryURL; u != "" && !strings.HasPrefix(u, "https://") {
		return berth.Errorf(berth.CodeInvalid, "tls.acme.directory_url %q is not an https URL", u)
	}
	return nil
}

// tlsCheckEvery spaces the looks at changed certificate files; tests set 0.
var tlsCheckEvery = time.Second

// serveTLS returns the TLS configuration berth serve listens with, or nil
// for plain HTTP.
func serveTLS(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	t := cfg.TLS
	switch {
	case t.CertFile != "":
		files, err := server.LoadCertFiles(t.CertFile, t.KeyFile, logger)
		if err != nil {
			return nil, berth.Errorf(berth.CodeInvalid, "%v", err).
				WithHint("give a PEM certificate (with its chain) and its PEM private key: --tls-cert cert.pem --tls-key key.pem")
		}
		files.CheckEvery = tlsCheckEvery
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: files.GetCertificate}, nil
	case len(t.ACME.Domains) > 0:
		return acmeTLS(cfg, logger)
	}
	return nil, nil
}

// acmeTLS obtains and renews certificates with autocert: on the first
// handshake for a domain, then ahead of expiry.
func acmeTLS(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	a := cfg.TLS.ACME
	cache := a.CacheDir
	if cache == "" {
		cache = filepath.Join(cfg.Data, "acme")
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("create the ACME cache folder: %w", err)
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, berth.Errorf(berth.CodeInvalid, "cannot read tls.acme.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, berth.Errorf(berth.CodeInvalid, "tls.acme.ca_file %s holds no PEM certificate", a.CAFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	dir := a.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client:     &acme.Client{DirectoryURL: dir, HTTPClient: hc, UserAgent: "berth/" + Version},
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	get := tc.GetCertificate
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hello)
		if err != nil && !isACMEChallenge(hello) {
			logger.Warn("no TLS certificate for the handshake", slog.String("server_name", hello.ServerName), slog.Any("err", err),
				slog.String("hint", "the CA checks a name by connecting to it on port 443 (tls-alpn-01): "+hello.ServerName+
					" must resolve to this server and reach berth's listener there (DNS, firewall, a proxy that passes TLS through, addr on :443); a name outside tls.acme.domains gets no certificate"))
		}
		return c, err
	}
	logger.Info("TLS certificates come from ACME", slog.String("directory", dir), slog.String("domains", strings.Join(a.Domains, ",")), slog.String("cache", cache))
	return tc, nil
}

// isACMEChallenge reports whether hello is the CA's tls-alpn-01 check.
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	for _, p := range hello.SupportedProtos {
		if p == acme.ALPNProto {
			return true
		}
	}
	return false
}
