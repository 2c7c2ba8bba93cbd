package berth_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestParseEventTypes(t *testing.T) {
	got, err := berth.ParseEventTypes([]string{"image.pushed", " secret.expiring", "dev.berth.image.pushed"})
	if err != nil || len(got) != 2 || got[0] != berth.EventImagePushed || got[1] != berth.EventSecretExpiring {
		t.Errorf("ParseEventTypes = %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"image.pulled"}, {"image.pushed", "nope"}} {
		if _, err := berth.ParseEventTypes(bad); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParseEventTypes(%q) = %v, want invalid", bad, err)
		}
	}
	if got := berth.EventSecretExpiring.CloudEventType(); got != "dev.berth.secret.expiring" {
		t.Errorf("CloudEventType = %q", got)
	}
}

func TestNewWebhook(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	w, err := berth.NewWebhook(rand.Reader, "https://hooks.example.com/berth", []berth.EventType{berth.EventImagePushed}, "ci", now)
	if err != nil {
		t.Fatal(err)
	}
	if w.ID == "" || !strings.HasPrefix(w.Secret.Reveal(), berth.WebhookSecretPrefix) || !w.Subscribes(berth.EventImagePushed) || w.Subscribes(berth.EventAuthDenied) {
		t.Errorf("NewWebhook = %+v", w)
	}
	for _, tc := range []struct {
		url, desc string
		events    []berth.EventType
	}{
		{"http://hooks.example.com/", "", []berth.EventType{berth.EventImagePushed}},
		{"ftp://127.0.0.1/", "", []berth.EventType{berth.EventImagePushed}},
		{"https://hooks.example.com/?token=x", "", []berth.EventType{berth.EventImagePushed}},
		{"https://hooks.example.com/", "", nil},
		{"https://hooks.example.com/", "", []berth.EventType{"image.pulled"}},
		{"https://hooks.example.com/", "two\nlines", []berth.EventType{berth.EventImagePushed}},
		{"https://hooks.example.com/", strings.Repeat("x", berth.MaxWebhookDescriptionLength+1), []berth.EventType{berth.EventImagePushed}},
	} {
		if _, err := berth.NewWebhook(rand.Reader, tc.url, tc.events, tc.desc, now); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("NewWebhook(%q, %v, %q) = %v, want invalid", tc.url, tc.events, truncateForTest(tc.desc), err)
		}
	}
	if _, err := berth.NewWebhook(rand.Reader, "http://127.0.0.1:8080/hook", []berth.EventType{berth.EventImagePushed}, "", now); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}

func truncateForTest(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func TestWebhookSecretRedacts(t *testing.T) {
	s, err := berth.NewWebhookSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v := s.Reveal()
	w := berth.Webhook{ID: "x", Secret: s}
	j, _ := json.Marshal(w)
	sj, _ := json.Marshal(s)
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", slog.Any("secret", s), slog.Any("webhook", w))
	for _, out := range []string{
		s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, w, w, s, s, s), string(j), string(sj), log.String(),
	} {
		if strings.Contains(out, v[len(berth.WebhookSecretPrefix):]) {
			t.Errorf("the secret leaked: %s", out)
		}
	}
}

func TestWebhookRetryDelay(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, w := range want {
		if got := berth.WebhookRetryDelay(i + 1); got != w {
			t.Errorf("WebhookRetryDelay(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestDeliveryAttempted(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	e := berth.Event{ID: "e", Type: berth.EventImagePushed}
	d, err := berth.NewDelivery(rand.Reader, "w", e, []byte("{}"), now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != berth.DeliveryPending || !d.NextAttempt.Equal(now) {
		t.Fatalf("new delivery %+v", d)
	}
	if _, err := d.Redelivery(rand.Reader, now); !berth.IsCode(err, berth.CodeConflict) {
		t.Errorf("redelivering a pending delivery: %v, want conflict", err)
	}
	d = d.Attempted(now, 500, nil)
	if d.Status != berth.DeliveryPending || d.Attempts != 1 || d.LastHTTPStatus != 500 || d.LastError == "" || !d.NextAttempt.Equal(now.Add(30*time.Second)) {
		t.Errorf("after a 500: %+v", d)
	}
	d = d.Attempted(now, 0, errors.New("connection refused"))
	if d.Attempts != 2 || d.LastHTTPStatus != 0 || !d.NextAttempt.Equal(now.Add(time.Minute)) {
		t.Errorf("after a refused connection: %+v", d)
	}
	ok := d.Attempted(now, 204, nil)
	if ok.Status != berth.DeliveryDelivered || ok.LastError != "" || !ok.Completed.Equal(now) {
		t.Errorf("after a 204: %+v", ok)
	}
	for d.Status == berth.DeliveryPending {
		d = d.Attempted(now, 503, nil)
	}
	if d.Status != berth.DeliveryFailed || d.Attempts != berth.WebhookMaxAttempts || !d.Completed.Equal(now) {
		t.Errorf("given up: %+v", d)
	}
	r, err := d.Redelivery(rand.Reader, now.Add(time.Hour))
	if err != nil || r.Status != berth.DeliveryPending || r.Attempts != 0 || r.RedeliveryOf != d.ID || r.ID == d.ID || r.EventID != "e" || string(r.Body) != "{}" {
		t.Errorf("Redelivery = %+v, %v", r, err)
	}
}

func TestWebhookSignature(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"specversion":"1.0"}`)
	h := berth.SignWebhook("brw_key", now, body)
	if !strings.HasPrefix(h, "t=1767225600,v1=") {
		t.Errorf("SignWebhook = %q", h)
	}
	if err := berth.VerifyWebhookSignature("brw_key", h, body, now.Add(time.Minute), 0); err != nil {
		t.Errorf("verify: %v", err)
	}
	for _, tc := range []struct {
		what, secret, header string
		body                 []byte
		at                   time.Time
	}{
		{"another secret", "brw_other", h, body, now},
		{"another body", "brw_key", h, []byte(`{}`), now},
		{"a replay", "brw_key", h, body, now.Add(10 * time.Minute)},
		{"no signature", "brw_key", "t=1767225600", body, now},
		{"garbage", "brw_key", "sha256=abc", body, now},
	} {
		if err := berth.VerifyWebhookSignature(tc.secret, tc.header, tc.body, tc.at, 0); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%s: %v, want invalid", tc.what, err)
		}
	}
}

func TestSecretNotice(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	revoked := now
	for _, tc := range []struct {
		left      time.Duration
		revoked   bool
		typ       berth.EventType
		threshold int
	}{
		{90 * day, false, "", 0},
		{60*day + time.Second, false, "", 0},
		{60 * day, false, berth.EventSecretExpiring, 60},
		{45 * day, false, berth.EventSecretExpiring, 60},
		{20 * day, false, berth.EventSecretExpiring, 30},
		{3 * day, false, berth.EventSecretExpiring, 7},
		{time.Hour, false, berth.EventSecretExpiring, 1},
		{0, false, berth.EventSecretExpired, 0},
		{-6 * day, false, berth.EventSecretExpired, 0},
		{-8 * day, false, "", 0},
		{3 * day, true, "", 0},
	} {
		s := berth.Secret{ID: "s1", Expires: now.Add(tc.left)}
		if tc.revoked {
			s.Revoked = &revoked
		}
		typ, th, once, ok := berth.SecretNotice(s, now)
		if typ != tc.typ || th != tc.threshold || ok != (tc.typ != "") || (ok && !strings.Contains(once, "s1")) {
			t.Errorf("left %v revoked %v: %q %d %q %v, want %q %d", tc.left, tc.revoked, typ, th, once, ok, tc.typ, tc.threshold)
		}
	}
	// Each threshold has its own key.
	_, _, k60, _ := berth.SecretNotice(berth.Secret{ID: "s", Expires: now.Add(50 * day)}, now)
	_, _, k30, _ := berth.SecretNotice(berth.Secret{ID: "s", Expires: now.Add(25 * day)}, now)
	if k60 == k30 {
		t.Errorf("thresholds share the key %q", k60)
	}
}

func TestDeniedWorthANotice(t *testing.T) {
	for _, tt := range []struct {
		action berth.AuditAction
		result berth.AuditResult
		reason berth.Code
		want   bool
	}{
		{berth.AuditAuthToken, berth.AuditDenied, berth.CodeSecretInvalid, true},
		{berth.AuditAuthToken, berth.AuditDenied, berth.CodeRoleMissing, true},
		{berth.AuditRegistryPull, berth.AuditDenied, berth.CodeRoleMissing, true},
		{berth.AuditAuthBearer, berth.AuditDenied, berth.CodeTokenExpired, true},
		// What clients meet on their way to success.
		{berth.AuditRegistryPull, berth.AuditDenied, berth.CodeScopeNotGranted, false},
		{berth.AuditRegistryVersion, berth.AuditChallenged, berth.CodeCredentialsMissing, false},
		{berth.AuditRegistryPull, berth.AuditDenied, berth.CodeCredentialsMissing, false},
		{berth.AuditAuthToken, berth.AuditAllowed, "", false},
		// Management refusals are not auth.denied.
		{berth.AuditRoleAssign, berth.AuditDenied, berth.CodeRoleMissing, false},
	} {
		e := berth.AuditEvent{Action: tt.action, Result: tt.result, Reason: tt.reason}
		if got := berth.DeniedWorthANotice(e); got != tt.want {
			t.Errorf("%s %s %s: %v, want %v", tt.action, tt.result, tt.reason, got, tt.want)
		}
	}
}
