package cli

import (
	"bytes"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServeMetrics scrapes /metrics after a push, parses it with the
// Prometheus text parser, and finds the request, the decision and the
// admin's secret expiry; without credentials the scrape is refused.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	blob := []byte("metered layer")
	if resp, body := s.do(t, "POST", "/v2/team/app/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	clientID, _ := s.admin(t)
	bad := "Basic " + basicCredentials(clientID, "brt_notthesecret")
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", map[string]string{"Authorization": bad}, nil); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	if resp, body := s.do(t, "GET", "/oauth2/token?service=berth&scope=repository:team/app:pull", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.do(t, "GET", "/metrics", map[string]string{"Authorization": ""}, nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous scrape: %d, want 401", resp.StatusCode)
	}
	resp, body := s.do(t, "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	has := func(family string, want map[string]string) *dto.Metric {
		t.Helper()
		f := families[family]
		if f == nil {
			t.Fatalf("no family %s", family)
		}
	next:
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			return m
		}
		t.Fatalf("%s has no series %v", family, want)
		return nil
	}
	if m := has("berth_http_requests_total", map[string]string{"route": "v2_upload", "method": "POST", "status": "201"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("one push counted %v times", m.GetCounter().GetValue())
	}
	has("berth_http_request_duration_seconds", map[string]string{"route": "v2_upload", "method": "POST"})
	has("berth_auth_decisions_total", map[string]string{"action": "registry.push", "result": "allowed", "reason": ""})
	has("berth_auth_decisions_total", map[string]string{"action": "auth.basic", "result": "denied", "reason": "secret_invalid"})
	if m := has("berth_tokens_issued_total", map[string]string{"grant_type": "docker"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("one token counted %v times", m.GetCounter().GetValue())
	}
	if m := has("berth_secret_expiry_timestamp_seconds", map[string]string{"principal": "admin"}); m.GetGauge().GetValue() < 1.7e9 {
		t.Errorf("admin's secret expiry %v is not a Unix time", m.GetGauge().GetValue())
	}
}
