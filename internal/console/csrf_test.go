package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/signin"
)

// routeRecorder is a mux that remembers the patterns registered on it.
type routeRecorder struct {
	*http.ServeMux
	patterns []string
}

func (m *routeRecorder) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// countingRegistry counts the /v2/ requests the console makes.
type countingRegistry struct{ n *atomic.Int64 }

func (r countingRegistry) ServeAs(w http.ResponseWriter, _ *http.Request, _ *berth.Caller) error {
	r.n.Add(1)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// TestEveryConsolePostNeedsTheSessionsCSRF walks every POST the console
// registers: signed in (a live session cookie), but with no csrf field, or
// the csrf field of another session, each is refused with
// signin_state_invalid before the API or the registry is asked anything.
// The break-glass sign-in, which has no session yet, needs its own
// double-submit value instead.
func TestEveryConsolePostNeedsTheSessionsCSRF(t *testing.T) {
	var apiCalls, registryCalls atomic.Int64
	admin := &berth.Principal{ID: "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", Name: "admin"}
	const cookie = "brs_session-of-admin"
	signedIn := 0
	h := &Handler{
		API: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apiCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{}"))
		}),
		Registry: countingRegistry{&registryCalls},
		Authenticate: func(_ context.Context, value string) (*berth.Caller, error) {
			if value != cookie {
				return nil, berth.Errorf(berth.CodeSessionEnded, "no such session")
			}
			return &berth.Caller{Actor: berth.Actor{ID: admin.ID, Name: admin.Name}, Principal: admin}, nil
		},
		AuthenticateClient: func(context.Context, string, string, string) (*berth.Caller, error) {
			signedIn++
			return &berth.Caller{Actor: berth.Actor{ID: admin.ID, Name: admin.Name}, Principal: admin}, nil
		},
	}
	mux := &routeRecorder{ServeMux: http.NewServeMux()}
	h.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: cookie})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	fill := strings.NewReplacer("{name}", "web", "{id}", "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", "{delivery}", "1", "{name...}", "team/app")
	form := url.Values{"repository": {"team/app"}, "tag": {"v1"}, "digest": {"sha256:" + strings.Repeat("a", 64)},
		"pipeline": {"web-main"}, "role": {"push"}, "scope": {"team/*"}, "expires_in": {"30d"},
		"name": {"api-main"}, "preset": {"gitlab"}, "spec": {"group/api@main"}, "client_id": {"admin"}, "client_secret": {"x"}}
	posts := 0
	for _, p := range mux.patterns {
		method, path, _ := strings.Cut(p, " ")
		if method != http.MethodPost {
			continue
		}
		posts++
		path = fill.Replace(path)
		for _, csrf := range []string{"", berth.SessionCSRF("brs_another-session"), strings.Repeat("0", 32)} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if csrf != "" {
				f.Set("csrf", csrf)
			}
			resp, page := post(path, f)
			if want := berth.LookupCode(berth.CodeSignInStateInvalid).Status; resp.StatusCode != want || !strings.Contains(page, "<code>"+string(berth.CodeSignInStateInvalid)+"</code>") {
				t.Errorf("POST %s with csrf %q: %s, want %d with reason %s", path, csrf, resp.Status, want, berth.CodeSignInStateInvalid)
			}
		}
	}
	if posts < 10 {
		t.Fatalf("only %d POST routes found: %v", posts, mux.patterns)
	}
	if n, m := apiCalls.Load(), registryCalls.Load(); n != 0 || m != 0 || signedIn != 0 {
		t.Errorf("forged forms reached the API %d times, the registry %d times, the break-glass sign-in %d times", n, m, signedIn)
	}

	// The control: the session's own csrf value gets through to the API.
	f := url.Values{"csrf": {berth.SessionCSRF(cookie)}, "pipeline": {"web-main"}}
	if resp, _ := post("/connections/web/authorize", f); apiCalls.Load() == 0 {
		t.Errorf("a form with the session's csrf did not reach the API: %s", resp.Status)
	}
}
