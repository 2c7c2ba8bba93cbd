package berth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// OutboundPolicy decides which addresses berth calls out to, beyond
// ValidateOutboundURL's scheme rule: webhooks, and the key sets an issuer's
// discovery document names (jwks_uri). A URL registered or discovered there
// must not reach the cloud's metadata service or the internal network (the
// request's answer shows in a delivery log or a refusal): private, shared
// and link-local addresses are refused unless AllowPrivate is set
// (outbound.allow_private), and the metadata services always. Loopback is
// always allowed, for development and tests.
type OutboundPolicy struct {
	AllowPrivate bool
}

// metadataHosts are the names of cloud metadata services.
var metadataHosts = []string{"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}

// metadataAddrs are the addresses of cloud metadata services: AWS, GCP,
// Azure, OpenStack (169.254.169.254), AWS over IPv6, Alibaba.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200"),
}

var sharedRange = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598, carrier-grade NAT

// CheckAddr returns invalid when berth must not connect to ip for what (a
// webhook, a jwks_uri).
func (p OutboundPolicy) CheckAddr(what string, ip netip.Addr) error {
	ip = ip.Unmap()
	refuse := func(kind string) error {
		hint := "use a public https address"
		if kind != "a cloud metadata service" {
			hint += ", or set outbound.allow_private: true in the configuration file to allow the internal network"
		}
		return Errorf(CodeInvalid, "the %s is at %s, %s; berth does not call there", what, ip, kind).WithHint("%s", hint)
	}
	switch {
	case ip.IsLoopback():
		return nil
	case slices.Contains(metadataAddrs, ip):
		return refuse("a cloud metadata service")
	case ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return refuse("not a host address")
	case p.AllowPrivate:
		return nil
	case ip.IsLinkLocalUnicast():
		return refuse("a link-local address")
	case ip.IsPrivate() || sharedRange.Contains(ip):
		return refuse("a private address")
	}
	return nil
}

// CheckURL returns invalid unless s passes ValidateOutboundURL and its host
// is not a metadata service's name nor an address CheckAddr refuses. A name
// is checked again where it resolves: see DialControl.
func (p OutboundPolicy) CheckURL(what, s string) error {
	if err := ValidateOutboundURL(what, s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	for _, m := range metadataHosts {
		if host == m {
			return Errorf(CodeInvalid, "the %s names %s, a cloud metadata service; berth does not call there", what, host).
				WithHint("use a public https address")
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(what, ip)
	}
	return nil
}

type outboundTrustedKey struct{}

// WithOutboundTrusted returns ctx for a request that DialControl lets reach
// the internal network: the discovery document of an issuer an owner
// registered, which may be there.
func WithOutboundTrusted(ctx context.Context) context.Context {
	return context.WithValue(ctx, outboundTrustedKey{}, true)
}

// DialControl is a net.Dialer ControlContext: it refuses a connection to an
// address CheckAddr refuses, once the name resolved; for a request whose ctx
// is WithOutboundTrusted, only the metadata services are refused. what names
// the calls in the refusal.
func (p OutboundPolicy) DialControl(what string) func(ctx context.Context, network, address string, _ syscall.RawConn) error {
	return func(ctx context.Context, _, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		if trusted, _ := ctx.Value(outboundTrustedKey{}).(bool); trusted {
			p = OutboundPolicy{AllowPrivate: true} // never the metadata service
		}
		return p.CheckAddr(what, ip)
	}
}

// Transport returns a clone of http.DefaultTransport whose connections go
// only where p allows (DialControl), what naming them in refusals. A proxy
// configured in the environment (HTTPS_PROXY, HTTP_PROXY) is the operator's
// choice and may be dialled wherever it is; through it only the URL's own
// check (CheckURL) holds.
func (p OutboundPolicy) Transport(what string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	proxies := map[string]bool{}
	for _, scheme := range []string{"https", "http"} {
		req := &http.Request{URL: &url.URL{Scheme: scheme, Host: "berth.invalid"}}
		if u, err := t.Proxy(req); err == nil && u != nil {
			port := u.Port()
			if port == "" {
				port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
			}
			proxies[net.JoinHostPort(u.Hostname(), port)] = true
		}
	}
	checked := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: p.DialControl(what)}
	direct := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxies[addr] {
			return direct.DialContext(ctx, network, addr)
		}
		return checked.DialContext(ctx, network, addr)
	}
	return t
}
