package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/webhook"
)

func TestWebhookCommands(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()

	code, stdout, stderr := runCLI(t, env, "webhook", "create", "https://hooks.example.com/berth", "--events", "secret.expiring,image.pushed",
		"--description", "ops", "-o", "json")
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	w := decodeJSON[map[string]any](t, stdout)
	keys(t, "webhook create -o json", w, "id", "url", "events", "description", "created_at", "secret")
	id, secret := w["id"].(string), w["secret"].(string)
	if !strings.HasPrefix(secret, berth.WebhookSecretPrefix) {
		t.Errorf("secret %q", secret)
	}

	code, stdout, _ = runCLI(t, env, "webhook", "create", "http://127.0.0.1:9/hook", "--events", "auth.denied")
	if code != 0 || !strings.Contains(stdout, "secret:  "+berth.WebhookSecretPrefix) {
		t.Errorf("create text: exit %d, %q", code, stdout)
	}

	code, stdout, _ = runCLI(t, env, "webhook", "list", "-o", "json")
	list := decodeJSON[[]map[string]any](t, stdout)
	if code != 0 || len(list) != 2 || (list[0]["id"] != id && list[1]["id"] != id) || strings.Contains(stdout, secret) {
		t.Errorf("list -o json: exit %d, %v", code, list)
	}
	code, stdout, _ = runCLI(t, env, "webhook", "list")
	if code != 0 || !strings.HasPrefix(stdout, "ID") || !strings.Contains(stdout, id) || strings.Contains(stdout, secret) {
		t.Errorf("list: exit %d, %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "webhook", "show", id)
	if code != 0 || !strings.Contains(stdout, "secret.expiring,image.pushed") || strings.Contains(stdout, secret) {
		t.Errorf("show: exit %d, %q", code, stdout)
	}

	// A delivered event, as the dispatcher leaves it, redelivered.
	ctx := context.Background()
	d, err := berth.NewDelivery(rand.Reader, id, berth.Event{ID: "ev-1", Type: berth.EventImagePushed}, []byte(`{}`), s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.EnqueueDeliveries(ctx, "", []berth.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.UpdateDelivery(ctx, d.Attempted(s.Clock.Now(), 500, nil)); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, env, "webhook", "deliveries", id, "-o", "json")
	ds := decodeJSON[[]map[string]any](t, stdout)
	if code != 0 || len(ds) != 1 {
		t.Fatalf("deliveries -o json: exit %d, %v", code, ds)
	}
	keys(t, "webhook deliveries -o json", ds[0], "id", "event_id", "event_type", "status", "attempts", "last_http_status", "last_error",
		"created_at", "last_attempt_at", "next_attempt_at")
	code, stdout, _ = runCLI(t, env, "webhook", "deliveries", id)
	if code != 0 || !strings.HasPrefix(stdout, "DELIVERY") || !strings.Contains(stdout, "500") {
		t.Errorf("deliveries: exit %d, %q", code, stdout)
	}
	// Still pending: its retry is due anyway.
	code, _, stderr = runCLI(t, env, "webhook", "redeliver", id, d.ID)
	if code != 1 || !strings.Contains(stderr, "[conflict]") {
		t.Errorf("redeliver pending: exit %d, %q", code, stderr)
	}
	if err := s.Store.UpdateDelivery(ctx, d.Attempted(s.Clock.Now(), 200, nil)); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, env, "webhook", "redeliver", id, d.ID, "-o", "json")
	if r := decodeJSON[map[string]any](t, stdout); code != 0 || r["redelivery_of"] != d.ID || r["status"] != "pending" {
		t.Errorf("redeliver: exit %d, %v", code, r)
	}

	code, stdout, _ = runCLI(t, env, "webhook", "delete", id, "-o", "json")
	if r := decodeJSON[map[string]any](t, stdout); code != 0 || r["id"] != id {
		t.Errorf("delete: exit %d, %v", code, r)
	}

	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"webhook", "show", id}, "[not_found]"},
		{[]string{"webhook", "create", "http://hooks.example.com/", "--events", "image.pushed"}, "[invalid]"},
		{[]string{"webhook", "create", "https://hooks.example.com/", "--events", "image.pulled"}, "[invalid]"},
		{[]string{"webhook", "create", "https://hooks.example.com/"}, "[invalid]"},
		{[]string{"webhook", "show", "not-a-uuid"}, "[invalid]"},
		{[]string{"webhook", "redeliver", id}, "[invalid]"},
	} {
		code, stdout, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.code) || !strings.Contains(stderr, "Try: ") || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and %s with a hint", tc.args, code, stdout, stderr, tc.code)
		}
	}
}

// TestServeWebhooks runs berth serve, subscribes a loopback receiver with
// berth webhook create, pushes an image with go-containerregistry and sends
// a wrong secret: the receiver gets image.pushed and auth.denied, signed.
func TestServeWebhooks(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}

	type delivery struct {
		ev     webhook.CloudEvent
		sigErr error
	}
	var hookSecret atomic.Value
	hookSecret.Store("")
	got := make(chan delivery, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var d delivery
		d.sigErr = berth.VerifyWebhookSignature(hookSecret.Load().(string), r.Header.Get(berth.WebhookSignatureHeader), body, time.Now(), 0)
		_ = json.Unmarshal(body, &d.ev)
		got <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	code, stdout, stderr := runCLI(t, env, "webhook", "create", recv.URL, "--events", "image.pushed,auth.denied", "-o", "json")
	if code != 0 {
		t.Fatalf("webhook create: exit %d, %s", code, stderr)
	}
	hookSecret.Store(decodeJSON[map[string]any](t, stdout)["secret"].(string))

	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(s.url, "http://")+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}
	bad := "Basic " + basicCredentials(id, "brt_notthesecret")
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", map[string]string{"Authorization": bad}, nil); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}

	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case d := <-got:
			if d.sigErr != nil {
				t.Errorf("%s: signature: %v", d.ev.Type, d.sigErr)
			}
			if d.ev.Source != s.url {
				t.Errorf("source %q, want %q", d.ev.Source, s.url)
			}
			seen[d.ev.Type] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("received %v; want image.pushed and auth.denied", seen)
		}
	}
	if !seen["dev.berth.image.pushed"] || !seen["dev.berth.auth.denied"] {
		t.Errorf("received %v", seen)
	}
	if strings.Contains(s.stderr.String(), hookSecret.Load().(string)) {
		t.Error("the server log holds the webhook secret")
	}
}

// TestServeVerifiesConnections: the scheduled verification that serve runs at
// start announces a connection that would refuse its pipelines, with the
// reason code a use of it would meet.
func TestServeVerifiesConnections(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}

	got := make(chan webhook.CloudEvent, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev webhook.CloudEvent
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		got <- ev
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	for _, args := range [][]string{
		{"principal", "create", "ci-web"},
		{"connection", "create", "web", "--principal", "ci-web", "--auth", "secret"},
		{"principal", "disable", "ci-web"},
		{"webhook", "create", recv.URL, "--events", "connection.verify_failed"},
	} {
		if code, _, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d, %s", args, code, stderr)
		}
	}
	s.stop(t)
	s = startServe(t, dir) // verifies every connection as it starts

	select {
	case ev := <-got:
		if ev.Type != "dev.berth."+string(berth.EventConnectionVerifyFailed) {
			t.Fatalf("event type %q", ev.Type)
		}
		var data webhook.ConnectionVerifyData
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Connection != "web" || data.Reason != berth.CodePrincipalDisabled {
			t.Errorf("data %+v, want connection web refused with principal_disabled", data)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no connection.verify_failed event")
	}
	// Attention shows what the scheduled run found, without asking anyone
	// again: a disabled principal, which the connection's own state does
	// not tell.
	admin := newBrowser(t)
	id, secret = s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	// The run records what it found once it has verified every connection,
	// which may be just after the event left.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, page := admin.get(s.url + "/")
		failing := section(t, page, "failing", "pending")
		if strings.Contains(failing, `<a href="/connections/web">web</a>: scheduled verification:`) && strings.Contains(failing, "<code>principal_disabled</code>") &&
			strings.Contains(failing, "As of the server's scheduled check") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Attention's failing connections:\n%s", failing)
		}
	}
}
