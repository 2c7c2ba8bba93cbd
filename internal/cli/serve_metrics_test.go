package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as the admin and parses it with the Prometheus text
// parser.
func scrape(t *testing.T, s *running) metricFamilies {
	t.Helper()
	resp, body := s.do(t, "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

type metricFamilies map[string]*dto.MetricFamily

// find returns the series of family whose labels include want, or nil.
func (fs metricFamilies) find(family string, want map[string]string) *dto.Metric {
	f := fs[family]
	if f == nil {
		return nil
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
	return nil
}

// value is the value of a counter or gauge series, or -1 when it is missing.
func (fs metricFamilies) value(family string, want map[string]string) float64 {
	m := fs.find(family, want)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}

// has fails unless family has a series whose labels include want.
func (fs metricFamilies) has(t *testing.T, family string, want map[string]string) *dto.Metric {
	t.Helper()
	if fs[family] == nil {
		t.Fatalf("no family %s", family)
	}
	m := fs.find(family, want)
	if m == nil {
		t.Fatalf("%s has no series %v", family, want)
	}
	return m
}

// TestServeMetrics scrapes /metrics after a push and a pull, parses it with
// the Prometheus text parser, and finds the request, the decision, the bytes
// and the expiry of each secret; without credentials the scrape is refused.
// A second start on the same data, collecting garbage every few
// milliseconds, reports the orphan blob collected.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	blob := []byte("metered layer")
	if resp, body := s.do(t, "POST", "/v2/team/app/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do(t, "GET", "/v2/team/app/blobs/"+sha256Digest(blob), nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, blob) {
		t.Fatalf("pull: %d %q", resp.StatusCode, body)
	}
	clientID, _ := s.admin(t)
	bad := "Basic " + basicCredentials(clientID, "brt_notthesecret")
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", map[string]string{"Authorization": bad}, nil); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	if resp, body := s.do(t, "GET", "/oauth2/token?service=berth&scope=repository:team/app:pull", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	resp, body := s.do(t, "POST", "/api/v1/principals/admin/secrets", map[string]string{"Content-Type": "application/json"}, []byte(`{"expires_in":"30d"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("add secret: %d %s", resp.StatusCode, body)
	}
	var added struct {
		ID      string    `json:"id"`
		Expires time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &added); err != nil || added.ID == "" {
		t.Fatalf("add secret answered %s: %v", body, err)
	}
	if resp, _ := s.do(t, "GET", "/metrics", map[string]string{"Authorization": ""}, nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous scrape: %d, want 401", resp.StatusCode)
	}

	fs := scrape(t, s)
	if m := fs.has(t, "berth_http_requests_total", map[string]string{"route": "v2_upload", "method": "POST", "status": "201"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("one push counted %v times", m.GetCounter().GetValue())
	}
	fs.has(t, "berth_http_request_duration_seconds", map[string]string{"route": "v2_upload", "method": "POST"})
	fs.has(t, "berth_auth_decisions_total", map[string]string{"action": "registry.push", "result": "allowed", "reason": ""})
	fs.has(t, "berth_auth_decisions_total", map[string]string{"action": "auth.basic", "result": "denied", "reason": "secret_invalid"})
	if v := fs.value("berth_tokens_issued_total", map[string]string{"grant_type": "docker"}); v != 1 {
		t.Errorf("one token counted %v times", v)
	}
	for _, name := range []string{"berth_upload_bytes_received_total", "berth_blob_bytes_written_total", "berth_blob_bytes_read_total"} {
		if v := fs.value(name, nil); v != float64(len(blob)) {
			t.Errorf("%s = %v after one push and one pull of %d bytes", name, v, len(blob))
		}
	}
	if m := fs.has(t, "berth_secret_expiry_timestamp_seconds", map[string]string{"principal": "admin"}); m.GetGauge().GetValue() < 1.7e9 {
		t.Errorf("admin's secret expiry %v is not a Unix time", m.GetGauge().GetValue())
	}
	if v := fs.value("berth_secret_expiry_timestamp_seconds", map[string]string{"principal": "admin", "secret_id": added.ID}); v != float64(added.Expires.Unix()) {
		t.Errorf("the new secret's expiry is %v, want its expires_at %d", v, added.Expires.Unix())
	}
	// Before any collection: both results at 0, no last run.
	if v := fs.value("berth_gc_runs_total", map[string]string{"result": "success"}); v != 0 {
		t.Errorf("gc runs before the first collection: %v", v)
	}
	if v := fs.value("berth_gc_last_run_timestamp_seconds", nil); v != 0 {
		t.Errorf("gc last run before the first collection: %v", v)
	}
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}

	// The pushed blob is referenced by no manifest: a collection with a grace
	// of a millisecond removes it.
	started := time.Now()
	s = startServe(t, dir, "--config", writeConfig(t, "gc:\n  interval: 20ms\n  grace: 1ms\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		fs = scrape(t, s)
		if fs.value("berth_gc_deleted_blobs_total", nil) >= 1 && fs.value("berth_gc_runs_total", map[string]string{"result": "success"}) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no collection removed the orphan blob within 10 s: runs %v, blobs %v",
				fs.value("berth_gc_runs_total", map[string]string{"result": "success"}), fs.value("berth_gc_deleted_blobs_total", nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := fs.value("berth_gc_deleted_blobs_total", nil); v != 1 {
		t.Errorf("deleted blobs %v, want 1", v)
	}
	if v := fs.value("berth_gc_freed_bytes_total", nil); v != float64(len(blob)) {
		t.Errorf("freed bytes %v, want %d", v, len(blob))
	}
	if v := fs.value("berth_gc_runs_total", map[string]string{"result": "failure"}); v != 0 {
		t.Errorf("failed collections: %v", v)
	}
	for _, name := range []string{"berth_gc_last_run_timestamp_seconds", "berth_gc_last_success_timestamp_seconds"} {
		if v := fs.value(name, nil); v < float64(started.Unix()) || v > float64(time.Now().Unix()+1) {
			t.Errorf("%s = %v, not between the start (%d) and now", name, v, started.Unix())
		}
	}
}

// TestMetricsNeedATokenIssuedForThem: an owner's access token narrowed to
// pulling one repository does not scrape /metrics; one issued for
// registry:metrics:pull does, and so do Basic credentials. Credentials in the
// query string are refused, not used.
func TestMetricsNeedATokenIssuedForThem(t *testing.T) {
	s := startServe(t, t.TempDir())
	token := func(scope string) string {
		resp, body := s.do(t, "GET", "/oauth2/token?service=berth&scope="+scope, nil, nil)
		var tok struct {
			Token string `json:"token"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil || tok.Token == "" {
			t.Fatalf("token for %s: %d %s", scope, resp.StatusCode, body)
		}
		return tok.Token
	}
	scrapeWith := func(auth string) (int, string) {
		resp, body := s.do(t, "GET", "/metrics", map[string]string{"Authorization": auth}, nil)
		return resp.StatusCode, string(body)
	}
	if status, body := scrapeWith("Bearer " + token("repository:team/app:pull")); status != 403 || !strings.HasPrefix(body, "scope_not_granted") {
		t.Errorf("token for repository:team/app:pull: %d %q, want 403 scope_not_granted", status, body)
	}
	if status, body := scrapeWith("Bearer " + token("registry:metrics:pull")); status != 200 {
		t.Errorf("token for registry:metrics:pull: %d %.200q", status, body)
	}
	clientID, secret := s.admin(t)
	if status, body := scrapeWith("Basic " + basicCredentials(clientID, secret)); status != 200 {
		t.Errorf("Basic credentials: %d %.200q", status, body)
	}
	resp, body := s.do(t, "GET", "/metrics?access_token="+secret, nil, nil)
	if resp.StatusCode != 400 || strings.Contains(string(body), secret) {
		t.Errorf("a secret in the query: %d %q, want 400 without the secret", resp.StatusCode, body)
	}
}
