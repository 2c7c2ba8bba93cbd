package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertFiles serves the certificate and key of two PEM files, and reloads
// them when either changes (a renewal by certbot, cert-manager or a
// Kubernetes secret update), without a restart: at most every CheckEvery,
// a handshake looks at the files' modification times and sizes. A pair that
// does not load (a half-written renewal) is logged, and the certificate
// already loaded keeps serving.
type CertFiles struct {
	certFile, keyFile string
	logger            *slog.Logger
	// CheckEvery spaces the looks at the files; 0 looks at every handshake.
	CheckEvery time.Duration
	now        func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp
	lastCheck time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadCertFiles loads the pair, which must load now: berth does not start
// with a certificate it cannot serve.
func LoadCertFiles(certFile, keyFile string, logger *slog.Logger) (*CertFiles, error) {
	c := &CertFiles{certFile: certFile, keyFile: keyFile, logger: logger, CheckEvery: time.Second, now: time.Now}
	stamp, err := c.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.lastCheck = &cert, stamp, c.now()
	return c, nil
}

func (c *CertFiles) stat() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, p := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("TLS file: %w", err)
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.lastCheck) < c.CheckEvery {
		return c.cert, nil
	}
	c.lastCheck = now
	stamp, err := c.stat()
	if err != nil || stamp == c.stamp {
		return c.cert, nil // a file briefly missing during a renewal: keep serving
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.logger.Warn("the TLS certificate files changed but do not load; serving the previous certificate",
			slog.String("cert_file", c.certFile), slog.Any("err", err))
		return c.cert, nil
	}
	c.cert, c.stamp = &cert, stamp
	c.logger.Info("reloaded the TLS certificate", slog.String("cert_file", c.certFile))
	return c.cert, nil
}
