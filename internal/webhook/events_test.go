package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
	"github.com/berth-dev/berth/internal/webhook"
)

// TestExpiryNotices moves the clock a day at a time through a secret's
// life: secret.expiring at 60, 30, 7 and 1 days, each once, then
// secret.expired once, naming the connection that uses the secret.
func TestExpiryNotices(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	w := addWebhook(t, s, r, c, berth.EventSecretExpiring, berth.EventSecretExpired)

	p, err := berth.NewPrincipal(rand.Reader, "ci-web", berth.PrincipalService, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	hasher, _ := berth.NewSecretHasher(make([]byte, berth.SecretPepperSize))
	sec, _, err := berth.NewSecret(rand.Reader, hasher, p.ID, c.Now(), 90*24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSecret(ctx, sec); err != nil {
		t.Fatal(err)
	}
	// A removed secret is never announced.
	gone, _, _ := berth.NewSecret(rand.Reader, hasher, p.ID, c.Now(), 10*24*time.Hour, "")
	if err := s.CreateSecret(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSecret(ctx, gone.ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := berth.NewConnection(rand.Reader, "deploy", p.ID, berth.ConnectionSecret, nil, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	conn.SecretID = sec.ID
	if err := s.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}

	sched := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now}
	sentOn := map[int]int{} // day → notices queued
	for day := 0; day <= 100; day++ {
		for range 2 { // twice a day: the second run finds nothing new
			n, err := sched.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sentOn[day] += n
		}
		c.Advance(24 * time.Hour)
	}
	want := map[int]int{30: 1, 60: 1, 83: 1, 89: 1, 90: 1} // 60, 30, 7, 1 days left; expired
	for day, n := range sentOn {
		if n != want[day] {
			t.Errorf("day %d: %d notices, want %d", day, n, want[day])
		}
	}
	for day, n := range want {
		if sentOn[day] != n {
			t.Errorf("day %d: %d notices, want %d", day, sentOn[day], n)
		}
	}

	log, err := s.FindDeliveries(ctx, w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(log) - 1; i >= 0; i-- {
		var ev webhook.CloudEvent
		if err := json.Unmarshal(log[i].Body, &ev); err != nil {
			t.Fatal(err)
		}
		var data berth.SecretEventData
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.SecretID != sec.ID || data.Principal != "ci-web" || len(data.Connections) != 1 || data.Connections[0] != "deploy" ||
			ev.Subject != "principals/ci-web/secrets/"+sec.ID || !data.ExpiresAt.Equal(sec.Expires) {
			t.Errorf("notice %s %+v", ev.Subject, data)
		}
		got = append(got, ev.Type+":"+itoa(data.ThresholdDays))
	}
	wantTypes := "dev.berth.secret.expiring:60 dev.berth.secret.expiring:30 dev.berth.secret.expiring:7 dev.berth.secret.expiring:1 dev.berth.secret.expired:0"
	if strings.Join(got, " ") != wantTypes {
		t.Errorf("notices %v, want %s", got, wantTypes)
	}

	// A restarted scheduler (a new one on the same store) sends nothing again.
	again := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now}
	if n, err := again.RunOnce(ctx); err != nil || n != 0 {
		t.Errorf("a new scheduler queued %d, %v", n, err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// verifying is a store holding a webhook subscribed to
// connection.verify_failed and one connection, "deploy", whose verification
// fails while broken is true.
type verifying struct {
	store  *sqlite.DB
	hook   berth.Webhook
	clock  *testclock.Clock
	broken bool
}

func newVerifying(t *testing.T, s *sqlite.DB) *verifying {
	t.Helper()
	ctx := context.Background()
	v := &verifying{store: s, clock: newClock(), broken: true}
	v.hook = addWebhook(t, s, newReceiver(t, v.clock), v.clock, berth.EventConnectionVerifyFailed)
	p, _ := berth.NewPrincipal(rand.Reader, "ci", berth.PrincipalService, v.clock.Now())
	if err := s.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	conn, _ := berth.NewConnection(rand.Reader, "deploy", p.ID, berth.ConnectionFederated, nil, v.clock.Now())
	if err := s.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return v
}

// scheduler returns a Scheduler of its own, as a replica or a restarted
// berth serve has, on store s.
func (v *verifying) scheduler(s *sqlite.DB) *webhook.Scheduler {
	return &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, v.clock), Now: v.clock.Now,
		Verify: func(context.Context, berth.Connection) error {
			if v.broken {
				return berth.Errorf(berth.CodeRoleMissing, "no push").WithHint("berth role assign …")
			}
			return nil
		}}
}

// run runs each scheduler once with the connection broken or not.
func (v *verifying) run(t *testing.T, broken bool, scheds ...*webhook.Scheduler) {
	t.Helper()
	v.broken = broken
	for _, s := range scheds {
		if _, err := s.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func (v *verifying) deliveries(t *testing.T, s *sqlite.DB) []berth.Delivery {
	t.Helper()
	log, err := s.FindDeliveries(context.Background(), v.hook.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// TestConnectionVerifyFailed: a failing connection is announced once while
// it stays broken, and again after it recovered and broke again.
func TestConnectionVerifyFailed(t *testing.T) {
	v := newVerifying(t, newStore(t))
	sched := v.scheduler(v.store)
	for _, b := range []bool{true, true, false, true} {
		v.run(t, b, sched)
	}
	log := v.deliveries(t, v.store)
	if len(log) != 2 {
		t.Fatalf("%d deliveries, want 2", len(log))
	}
	var ev webhook.CloudEvent
	_ = json.Unmarshal(log[0].Body, &ev)
	var data webhook.ConnectionVerifyData
	_ = json.Unmarshal(ev.Data, &data)
	if ev.Type != "dev.berth.connection.verify_failed" || ev.Subject != "connections/deploy" || data.Reason != berth.CodeRoleMissing {
		t.Errorf("event %+v data %+v", ev, data)
	}
}

// TestConnectionVerifyFailedReplicas: two replicas on one store announce a
// broken connection once between them, and once again when it broke again
// after one of them saw it pass.
func TestConnectionVerifyFailedReplicas(t *testing.T) {
	v := newVerifying(t, newStore(t))
	a, b := v.scheduler(v.store), v.scheduler(v.store)
	v.run(t, true, a, b, a, b)
	if n := len(v.deliveries(t, v.store)); n != 1 {
		t.Fatalf("%d deliveries from two replicas, want 1", n)
	}
	v.run(t, false, a)
	v.run(t, true, b, a)
	if n := len(v.deliveries(t, v.store)); n != 2 {
		t.Fatalf("%d deliveries after the connection broke again, want 2", n)
	}
}

// TestConnectionVerifyFailedRestart: a restarted berth serve (a fresh
// Scheduler on the store reopened) does not announce again a connection
// that stayed broken.
func TestConnectionVerifyFailedRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	before, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifying(t, before)
	v.run(t, true, v.scheduler(before))
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}

	after := openStore(t, path)
	v.run(t, true, v.scheduler(after))
	if n := len(v.deliveries(t, after)); n != 1 {
		t.Fatalf("%d deliveries across a restart, want 1", n)
	}
}

// recorded is an audit recorder that keeps what it is given.
type recorded struct {
	mu     sync.Mutex
	events []berth.AuditEvent
}

func (r *recorded) Record(e berth.AuditEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// TestAuditEvents: the recorder passes every audit event on, and publishes
// auth.denied (one a minute per principal, counting the rest) and
// pipeline.permission_requested.
func TestAuditEvents(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	w := addWebhook(t, s, r, c, berth.EventAuthDenied, berth.EventPermissionRequested)
	p := newPublisher(s, c)
	next := &recorded{}
	rec := p.Recorder(next)

	denied := func(actor string, action berth.AuditAction) berth.AuditEvent {
		return berth.AuditEvent{Time: c.Now(), Actor: actor, Action: action, Result: berth.AuditDenied, Reason: berth.CodeSecretExpired, Target: "team/app"}
	}
	rec.Record(denied("ci-web", berth.AuditAuthBasic))                                                         // sent
	rec.Record(denied("ci-web", berth.AuditRegistryPush))                                                      // suppressed
	rec.Record(denied("ci-web", berth.AuditAuthToken))                                                         // suppressed
	rec.Record(denied("ci-api", berth.AuditAuthBasic))                                                         // sent: another principal
	rec.Record(denied("ci-web", berth.AuditPrincipalCreate))                                                   // not an auth.* or registry.* action
	rec.Record(berth.AuditEvent{Actor: "ci-web", Action: berth.AuditRegistryPull, Result: berth.AuditAllowed}) // allowed
	rec.Record(berth.AuditEvent{Actor: "anonymous", Action: berth.AuditRegistryPull, Result: berth.AuditDenied,
		Reason: berth.CodeCredentialsMissing}) // the challenge before a login
	c.Advance(time.Minute)
	rec.Record(denied("ci-web", berth.AuditAuthBearer)) // sent, with 2 suppressed
	rec.Record(berth.AuditEvent{Time: c.Now(), Action: berth.AuditPermissionRequested, Result: berth.AuditDenied,
		Target: "deploy", Pipeline: "gh-main", Detail: map[string]string{"ci_run": "42"}})

	if len(next.events) != 9 {
		t.Errorf("the next recorder got %d events, want all 9", len(next.events))
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	p.Run(ctx2) // stores what was published, then returns

	log, _ := s.FindDeliveries(ctx, w.ID, 0)
	var got []string
	for i := len(log) - 1; i >= 0; i-- {
		var ev webhook.CloudEvent
		_ = json.Unmarshal(log[i].Body, &ev)
		var data berth.AuditEventData
		_ = json.Unmarshal(ev.Data, &data)
		got = append(got, ev.Type+" "+ev.Subject+" "+string(data.Action)+" "+itoa(data.Suppressed))
		if ev.Type == "dev.berth.pipeline.permission_requested" && (data.Pipeline != "gh-main" || data.Run != "42") {
			t.Errorf("permission request data %+v", data)
		}
	}
	want := []string{
		"dev.berth.auth.denied principals/ci-web auth.basic 0",
		"dev.berth.auth.denied principals/ci-api auth.basic 0",
		"dev.berth.auth.denied principals/ci-web auth.bearer 2",
		"dev.berth.pipeline.permission_requested connections/deploy pipeline.permission_requested 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestImagePushed pushes an image through the /v2/ handler with
// go-containerregistry, deletes its tag, and receives image.pushed (for
// every manifest) and image.deleted.
func TestImagePushed(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	addWebhook(t, s, r, c, berth.EventImagePushed, berth.EventImageDeleted)
	d := webhook.NewDispatcher(s, webhook.DispatcherOptions{Now: c.Now, Poll: time.Hour})
	p := webhook.NewPublisher(s, webhook.Options{Source: source, Now: c.Now, Nudge: d.Nudge})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(runCtx) })
	wg.Go(func() { d.Run(runCtx) })
	defer func() { cancel(); wg.Wait() }()

	blobs, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var mu sync.Mutex
	h := &oci.Handler{Meta: s, Blobs: blobs, Uploads: blobs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now,
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return "id-" + itoa(n)
		}, CommitLock: &sync.RWMutex{}, MaxManifestSize: 4 << 20, Events: p}
	srv := httptest.NewServer(h)
	defer srv.Close()

	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	got := r.wait()
	var data berth.ImageEventData
	if err := json.Unmarshal(got.event.Data, &data); err != nil {
		t.Fatal(err)
	}
	if got.event.Type != "dev.berth.image.pushed" || got.event.Subject != "repositories/team/app" || got.sigErr != nil ||
		data.Repository != "team/app" || data.Tag != "v1" || data.Digest.String() != digest.String() || data.Size == 0 || data.MediaType == "" {
		t.Errorf("image.pushed %+v data %+v", got, data)
	}

	tag, _ := name.NewTag(host+"/team/app:v1", name.Insecure)
	if err := remote.Delete(tag); err != nil {
		t.Fatal(err)
	}
	got = r.wait()
	data = berth.ImageEventData{}
	_ = json.Unmarshal(got.event.Data, &data)
	if got.event.Type != "dev.berth.image.deleted" || data.Repository != "team/app" || data.Tag != "v1" {
		t.Errorf("image.deleted %+v data %+v", got, data)
	}
}

// TestUpstreamExpiryNotices: an upstream credential with a recorded expiry
// gets the notices of a client secret, naming the upstream; one without an
// expiry gets none.
func TestUpstreamExpiryNotices(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	w := addWebhook(t, s, r, c, berth.EventSecretExpiring, berth.EventSecretExpired)
	exp := c.Now().Add(40 * 24 * time.Hour)
	hub, err := berth.NewUpstream(berth.NewUpstreamRequest{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub",
		Username: "bot", Password: berth.UpstreamPasswordOf("x"), ExpiresAt: &exp}, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := berth.NewUpstream(berth.NewUpstreamRequest{Name: "ghcr", URL: "https://ghcr.io", Namespace: "ghcr"}, c.Now())
	for _, u := range []berth.Upstream{hub, anon} {
		if err := s.CreateUpstream(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	sched := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now, Upstreams: s}
	sentOn := map[int]int{}
	for day := 0; day <= 50; day++ {
		for range 2 {
			n, err := sched.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sentOn[day] += n
		}
		c.Advance(24 * time.Hour)
	}
	want := map[int]int{0: 1, 10: 1, 33: 1, 39: 1, 40: 1} // 60 (reached at once), 30, 7, 1 days left; expired
	for day := 0; day <= 50; day++ {
		if sentOn[day] != want[day] {
			t.Errorf("day %d: %d notices, want %d", day, sentOn[day], want[day])
		}
	}
	log, err := s.FindDeliveries(ctx, w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total := sumNotices(want); len(log) != total {
		t.Fatalf("%d deliveries stored, want %d", len(log), total)
	}
	for _, d := range log {
		var ev webhook.CloudEvent
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		var data berth.SecretEventData
		_ = json.Unmarshal(ev.Data, &data)
		if ev.Subject != "upstreams/hub" || data.Upstream != "hub" || data.Username != "bot" || !data.ExpiresAt.Equal(exp) || strings.Contains(string(d.Body), `"x"`) {
			t.Errorf("notice %s %s", ev.Subject, ev.Data)
		}
	}
}

// A person's personal access tokens get the expiry notices of secrets, with
// data kind personal_access_token; a revoked one gets none.
func TestTokenExpiryNotices(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	w := addWebhook(t, s, r, c, berth.EventSecretExpiring, berth.EventSecretExpired)
	p, _ := berth.NewPrincipal(rand.Reader, "ada", berth.PrincipalUser, c.Now())
	if err := s.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	tok, _, err := berth.NewPAT(rand.Reader, p.ID, nil, "laptop", c.Now(), 10*24*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	gone, _, _ := berth.NewPAT(rand.Reader, p.ID, nil, "", c.Now(), 10*24*time.Hour, 0)
	for _, x := range []berth.PersonalAccessToken{tok, gone} {
		if err := s.CreatePAT(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokePAT(ctx, gone.ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	sched := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now, Tokens: s}
	sentOn := map[int]int{}
	for day := 0; day <= 20; day++ {
		for range 2 {
			n, err := sched.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sentOn[day] += n
		}
		c.Advance(24 * time.Hour)
	}
	want := map[int]int{0: 1, 3: 1, 9: 1, 10: 1} // 30 (reached at once), 7, 1 days left; expired
	for day := 0; day <= 20; day++ {
		if sentOn[day] != want[day] {
			t.Errorf("day %d: %d notices, want %d", day, sentOn[day], want[day])
		}
	}
	log, err := s.FindDeliveries(ctx, w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total := sumNotices(want); len(log) != total {
		t.Fatalf("%d deliveries stored, want %d", len(log), total)
	}
	for _, d := range log {
		var ev webhook.CloudEvent
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		var data berth.SecretEventData
		_ = json.Unmarshal(ev.Data, &data)
		if ev.Subject != "principals/ada/tokens/"+tok.ID || data.Kind != "personal_access_token" || data.SecretID != tok.ID || data.Principal != "ada" {
			t.Errorf("notice %s %s", ev.Subject, ev.Data)
		}
	}
}

// TestUpstreamVerifyFailed: an upstream whose verification fails is
// announced once while it stays broken, and again after it passed once.
func TestUpstreamVerifyFailed(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(t)
	r := newReceiver(t, c)
	w := addWebhook(t, s, r, c, berth.EventUpstreamVerifyFailed)
	hub, _ := berth.NewUpstream(berth.NewUpstreamRequest{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub"}, c.Now())
	if err := s.CreateUpstream(ctx, hub); err != nil {
		t.Fatal(err)
	}
	broken := true
	sched := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now, Upstreams: s,
		VerifyUpstream: func(_ context.Context, u berth.Upstream) error {
			if broken {
				return berth.UpstreamAuthFailed(u, 401, "incorrect username or password")
			}
			return nil
		}}
	run := func() {
		if _, err := sched.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		log, err := s.FindDeliveries(ctx, w.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(log)
	}
	run()
	run()
	if n := count(); n != 1 {
		t.Fatalf("%d notices while broken, want 1", n)
	}
	broken = false
	run()
	broken = true
	run()
	if n := count(); n != 2 {
		t.Fatalf("%d notices after a pass and a new failure, want 2", n)
	}
	log, _ := s.FindDeliveries(ctx, w.ID, 0)
	var ev webhook.CloudEvent
	if err := json.Unmarshal(log[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	var data webhook.UpstreamVerifyData
	_ = json.Unmarshal(ev.Data, &data)
	if ev.Subject != "upstreams/hub" || data.Reason != berth.CodeUpstreamAuthFailed || !strings.Contains(data.Message, "incorrect username") || data.Hint == "" {
		t.Errorf("notice %s %s", ev.Subject, ev.Data)
	}
}

// sumNotices adds up the notices expected per day.
func sumNotices(perDay map[int]int) int {
	n := 0
	for _, v := range perDay {
		n += v
	}
	return n
}

// failingUpstreams is an upstream list that cannot be read.
type failingUpstreams struct{}

func (failingUpstreams) FindUpstreams(context.Context) ([]berth.Upstream, error) {
	return nil, errors.New("upstreams unreadable")
}

// TestUpstreamFailureStillVerifiesConnections: upstreams that cannot be read
// are reported, and the connections are verified all the same.
func TestUpstreamFailureStillVerifiesConnections(t *testing.T) {
	c := newClock()
	s := newStore(t)
	p, _ := berth.NewPrincipal(rand.Reader, "ci", berth.PrincipalService, c.Now())
	if err := s.CreatePrincipal(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	conn, _ := berth.NewConnection(rand.Reader, "deploy", p.ID, berth.ConnectionFederated, nil, c.Now())
	if err := s.CreateConnection(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	verified := 0
	sched := &webhook.Scheduler{Secrets: s, Publisher: newPublisher(s, c), Now: c.Now, Upstreams: failingUpstreams{},
		Verify: func(context.Context, berth.Connection) error { verified++; return nil }}
	if _, err := sched.RunOnce(context.Background()); err == nil {
		t.Error("unreadable upstreams were not reported")
	}
	if _, at := sched.LastVerification(); at.IsZero() || verified != 1 {
		t.Errorf("after the upstreams failed: %d connections verified, last verification at %v; want 1", verified, at)
	}
}
