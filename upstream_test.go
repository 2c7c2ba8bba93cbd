package berth_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestNewUpstream(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(90*24*time.Hour)
	pw := berth.UpstreamPasswordOf("hunter2")
	ok := berth.NewUpstreamRequest{Name: "hub", URL: "https://registry-1.docker.io/", Namespace: "hub"}
	for _, tc := range []struct {
		name string
		edit func(*berth.NewUpstreamRequest)
		want berth.Code // "" for accepted
	}{
		{"anonymous", func(*berth.NewUpstreamRequest) {}, ""},
		{"with credential", func(r *berth.NewUpstreamRequest) { r.Username, r.Password, r.ExpiresAt = "bot", pw, &future }, ""},
		{"loopback http", func(r *berth.NewUpstreamRequest) { r.URL = "http://127.0.0.1:5001" }, ""},
		{"docker.io", func(r *berth.NewUpstreamRequest) { r.URL = "https://docker.io" }, ""},
		{"name upper case", func(r *berth.NewUpstreamRequest) { r.Name = "Hub" }, berth.CodeInvalid},
		{"plain http", func(r *berth.NewUpstreamRequest) { r.URL = "http://registry.example.com" }, berth.CodeInvalid},
		{"path", func(r *berth.NewUpstreamRequest) { r.URL = "https://registry.example.com/v2/" }, berth.CodeInvalid},
		{"user in URL", func(r *berth.NewUpstreamRequest) { r.URL = "https://u:p@registry.example.com" }, berth.CodeInvalid},
		{"namespace with slash", func(r *berth.NewUpstreamRequest) { r.Namespace = "cache/hub" }, berth.CodeInvalid},
		{"namespace empty", func(r *berth.NewUpstreamRequest) { r.Namespace = "" }, berth.CodeInvalid},
		{"username only", func(r *berth.NewUpstreamRequest) { r.Username = "bot" }, berth.CodeInvalid},
		{"password only", func(r *berth.NewUpstreamRequest) { r.Password = pw }, berth.CodeInvalid},
		{"username with colon", func(r *berth.NewUpstreamRequest) { r.Username, r.Password = "a:b", pw }, berth.CodeInvalid},
		{"negative ttl", func(r *berth.NewUpstreamRequest) { r.TagTTL = -time.Second }, berth.CodeInvalid},
		{"expiry in the past", func(r *berth.NewUpstreamRequest) { r.Username, r.Password, r.ExpiresAt = "bot", pw, &past }, berth.CodeInvalid},
		{"expiry without credential", func(r *berth.NewUpstreamRequest) { r.ExpiresAt = &future }, berth.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			tc.edit(&req)
			u, err := berth.NewUpstream(req, now)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(u.URL, "/") || u.URL == "https://docker.io" || u.TagTTL != berth.DefaultTagTTL || !u.Created.Equal(now) {
					t.Errorf("upstream = %+v", u)
				}
				return
			}
			if !berth.IsCode(err, tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestUpstreamRemoteRepository(t *testing.T) {
	hub := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub"}
	ghcr := berth.Upstream{Name: "ghcr", URL: "https://ghcr.io", Namespace: "ghcr"}
	for _, tc := range []struct {
		u          berth.Upstream
		repo, want string
		ok         bool
	}{
		{hub, "hub/alpine", "library/alpine", true},
		{hub, "hub/library/alpine", "library/alpine", true},
		{hub, "hub/bitnami/redis", "bitnami/redis", true},
		{ghcr, "ghcr/alpine", "alpine", true}, // only Docker Hub shortens
		{hub, "hubx/alpine", "", false},
		{hub, "hub", "", false},
		{hub, "team/hub/alpine", "", false},
		{hub, "hub/", "", false},
		{berth.Upstream{Name: "none"}, "/alpine", "", false},
	} {
		got, ok := tc.u.RemoteRepository(tc.repo)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s.RemoteRepository(%q) = %q, %v; want %q, %v", tc.u.Name, tc.repo, got, ok, tc.want, tc.ok)
		}
		// The one namespace test: Holds, RemoteRepository and UpstreamFor
		// agree on every repository.
		if held := tc.u.Holds(tc.repo); held != tc.ok {
			t.Errorf("%s.Holds(%q) = %v, want %v", tc.u.Name, tc.repo, held, tc.ok)
		}
		if _, found := berth.UpstreamFor([]berth.Upstream{tc.u}, tc.repo); found != tc.ok {
			t.Errorf("UpstreamFor([%s], %q) found %v, want %v", tc.u.Name, tc.repo, found, tc.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { berth.UpstreamFor([]berth.Upstream{ghcr, hub}, "hub/library/alpine") }); n != 0 {
		t.Errorf("UpstreamFor of a repository in a namespace allocates %v times", n)
	}
	if u, ok := berth.UpstreamFor([]berth.Upstream{ghcr, hub}, "hub/alpine"); !ok || u.Name != "hub" {
		t.Errorf("UpstreamFor(hub/alpine) = %v, %v", u.Name, ok)
	}
	if _, ok := berth.UpstreamFor([]berth.Upstream{ghcr, hub}, "team/alpine"); ok {
		t.Error("UpstreamFor(team/alpine) found an upstream")
	}
}

// TestUpstreamPasswordNeverPrinted checks every way an upstream reaches a
// log, a response or an error.
func TestUpstreamPasswordNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-upstream-password"
	u := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub", Username: "bot",
		Password: berth.UpstreamPasswordOf(secret), TagTTL: time.Hour}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), fmt.Sprint(u), fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u), fmt.Sprintf("%s %q %x", u.Password, u.Password, u.Password)} {
		if strings.Contains(s, secret) {
			t.Errorf("printed the password: %s", s)
		}
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out["has_password"] != true || out["tag_ttl"] != "1h0m0s" {
		t.Errorf("JSON = %s", b)
	}
	if u.Password.Reveal() != secret {
		t.Error("Reveal lost the value")
	}
}

func TestUpstreamErrors(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	u := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub", Username: "bot"}
	auth := berth.UpstreamAuthFailed(u, 401, "incorrect username or password")
	if auth.Code != berth.CodeUpstreamAuthFailed || !strings.Contains(auth.Message, "hub") || !strings.Contains(auth.Message, "incorrect username") ||
		!strings.Contains(auth.Hint, "berth upstream update hub --username USER --password-stdin") {
		t.Errorf("auth failed = %+v", auth)
	}
	un := berth.UpstreamUnreachable(u, "connection refused")
	if un.Code != berth.CodeUpstreamUnreachable || !strings.Contains(un.Message, "registry-1.docker.io") {
		t.Errorf("unreachable = %+v", un)
	}
	rl := berth.UpstreamRateLimited(u, "toomanyrequests", now.Add(90*time.Second), now)
	if rl.Code != berth.CodeUpstreamRateLimited || rl.Detail["retry_after"] != 90 || !strings.Contains(rl.Message, "2026-12-06T12:01:30Z") {
		t.Errorf("rate limited = %+v", rl)
	}
	ro := berth.CacheReadOnly(u, "hub/library/alpine")
	if ro.Code != berth.CodeCacheReadOnly || !strings.Contains(ro.Hint, "team/alpine") {
		t.Errorf("read only = %+v", ro)
	}
}

func TestUpstreamJSONRoundTrip(t *testing.T) {
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	u := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub", Username: "bot",
		Password: berth.UpstreamPasswordOf("x"), TagTTL: 90 * time.Minute, ExpiresAt: &exp, Created: exp.AddDate(0, -1, 0)}
	b, _ := json.Marshal(u)
	var got berth.Upstream
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != u.Name || got.URL != u.URL || got.TagTTL != u.TagTTL || !got.ExpiresAt.Equal(exp) || got.Username != "bot" || !got.Password.IsZero() {
		t.Errorf("round trip: %+v", got)
	}
}

// What an upstream says back reaches logs, Warning headers and webhooks
// without the upstream's own password, whatever its format.
func TestUpstreamRefusalsHideItsPassword(t *testing.T) {
	u := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Username: "bot", Password: berth.UpstreamPasswordOf("dckr_pat_0123456789abcdef")}
	for _, e := range []*berth.Error{
		berth.UpstreamAuthFailed(u, 401, `{"details":"incorrect password dckr_pat_0123456789abcdef"}`),
		berth.UpstreamUnreachable(u, "dial: user bot:dckr_pat_0123456789abcdef"),
		berth.UpstreamRateLimited(u, "token dckr_pat_0123456789abcdef over its limit", time.Time{}, time.Now()),
	} {
		if strings.Contains(e.Message+e.Hint, "dckr_pat_0123456789abcdef") {
			t.Errorf("%s: %s", e.Code, e.Message)
		}
	}
}

func TestCacheRefuses(t *testing.T) {
	for action, want := range map[string]bool{"push": true, "pull": false, "delete": false, "*": false, "": false} {
		if got := berth.CacheRefusesDocker(action); got != want {
			t.Errorf("CacheRefusesDocker(%q) = %v, want %v", action, got, want)
		}
	}
}

// Change keeps what it is not given, keeps a credential's recorded expiry
// even once past, replaces the expiry with a new credential, and never lets
// a kept credential go to another host.
func TestUpstreamChange(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	u := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub", Username: "bot",
		Password: berth.UpstreamPasswordOf("pw"), TagTTL: time.Hour, MaxSize: 10, ExpiresAt: &past, Created: created}
	size := int64(0)
	got, err := u.Change(berth.UpstreamChange{TagTTL: 2 * time.Hour, MaxSize: &size}, now)
	if err != nil || got.TagTTL != 2*time.Hour || got.MaxSize != 0 || got.ExpiresAt == nil || !got.ExpiresAt.Equal(past) ||
		got.Username != "bot" || got.Password.Reveal() != "pw" || !got.Created.Equal(created) || got.Namespace != "hub" {
		t.Fatalf("a change of TTL and size: %+v, %v", got, err)
	}
	got, err = u.Change(berth.UpstreamChange{Username: "bot2", Password: berth.UpstreamPasswordOf("pw2")}, now)
	if err != nil || got.Username != "bot2" || got.ExpiresAt != nil {
		t.Fatalf("a new credential: %+v, %v", got, err)
	}
	_, err = u.Change(berth.UpstreamChange{URL: "https://elsewhere.example"}, now)
	if !berth.IsCode(err, berth.CodeInvalid) || !strings.Contains(berth.AsError(err).Hint, "--password-stdin") {
		t.Fatalf("another host with the kept credential: %v", err)
	}
	if got, err = u.Change(berth.UpstreamChange{URL: "https://registry-1.docker.io/"}, now); err != nil || got.Password.Reveal() != "pw" {
		t.Fatalf("the same host written otherwise: %+v, %v", got, err)
	}
	if got, err = u.Change(berth.UpstreamChange{URL: "https://elsewhere.example", Anonymous: true}, now); err != nil || !got.Password.IsZero() || got.Username != "" {
		t.Fatalf("another host, anonymous: %+v, %v", got, err)
	}
	if _, err = u.Change(berth.UpstreamChange{Anonymous: true, Username: "x", Password: berth.UpstreamPasswordOf("y")}, now); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("anonymous with a credential: %v", err)
	}
	if _, err = u.Change(berth.UpstreamChange{ExpiresAt: &past}, now); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("a new expiry in the past: %v", err)
	}
}
