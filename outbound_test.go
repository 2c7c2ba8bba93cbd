package berth_test

import (
	"context"
	"testing"

	"github.com/berth-dev/berth"
)

func TestOutboundPolicy(t *testing.T) {
	strict, lax := berth.OutboundPolicy{}, berth.OutboundPolicy{AllowPrivate: true}
	for _, tc := range []struct {
		url         string
		strict, lax bool // allowed
	}{
		{"https://hooks.example.com/x", true, true},
		{"https://203.0.113.7/x", true, true},
		{"http://127.0.0.1:8080/x", true, true},
		{"http://[::1]:8080/x", true, true},
		{"http://localhost:8080/x", true, true},
		{"https://10.1.2.3/x", false, true},
		{"https://172.16.0.1/x", false, true},
		{"https://192.168.1.10/x", false, true},
		{"https://100.64.0.1/x", false, true},
		{"https://[fd12::1]/x", false, true},
		{"https://[::ffff:10.0.0.1]/x", false, true},
		{"https://169.254.10.10/x", false, true},
		{"https://[fe80::1]/x", false, true},
		// The metadata services, whatever is allowed.
		{"http://169.254.169.254/latest/meta-data/", false, false},
		{"https://169.254.169.254/latest/meta-data/", false, false},
		{"https://[fd00:ec2::254]/x", false, false},
		{"https://100.100.100.200/x", false, false},
		{"https://metadata.google.internal/computeMetadata/v1/", false, false},
		{"https://METADATA.google.internal./x", false, false},
		{"https://0.0.0.0/x", false, false},
		{"https://224.0.0.1/x", false, false},
		// The scheme rule still holds.
		{"http://hooks.example.com/x", false, false},
	} {
		if err := strict.CheckURL("webhook", tc.url); (err == nil) != tc.strict {
			t.Errorf("strict %s: %v", tc.url, err)
		} else if err != nil && !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("strict %s: code %s", tc.url, berth.ErrorCode(err))
		}
		if err := lax.CheckURL("webhook", tc.url); (err == nil) != tc.lax {
			t.Errorf("allow_private %s: %v", tc.url, err)
		}
	}
}

// A name is checked where it resolves: the dialer refuses a private address
// unless the request is a trusted one (an issuer an owner registered).
func TestOutboundDialControl(t *testing.T) {
	control := berth.OutboundPolicy{}.DialControl("webhook")
	ctx := context.Background()
	for addr, ok := range map[string]bool{"10.0.0.5:443": false, "169.254.169.254:80": false, "127.0.0.1:80": true, "203.0.113.9:443": true} {
		if err := control(ctx, "tcp", addr, nil); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := control(berth.WithOutboundTrusted(ctx), "tcp", "10.0.0.5:443", nil); err != nil {
		t.Errorf("trusted: %v", err)
	}
	if err := control(berth.WithOutboundTrusted(ctx), "tcp", "169.254.169.254:80", nil); err == nil {
		t.Error("trusted reaches the metadata service")
	}
}
