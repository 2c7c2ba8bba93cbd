package signin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Over https every cookie of the sign-in is __Host- prefixed (Secure,
// Path=/, no Domain), and only that name is read: a sibling subdomain's
// planted berth_session is not a session. Over plain http (loopback) the
// names are as they are.
func TestCookiesAreHostBoundOverHTTPS(t *testing.T) {
	for _, c := range []struct {
		url, name string
		secure    bool
	}{
		{"https://registry.example.com", "__Host-berth_session", true},
		{"", "berth_session", false},
	} {
		s := &Service{URL: c.url}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/login/callback", nil)
		s.SetSessionCookie(w, r, "brs_value")
		set := w.Result().Cookies()
		if len(set) != 1 || set[0].Name != c.name || set[0].Path != "/" || set[0].Domain != "" || set[0].Secure != c.secure || !set[0].HttpOnly {
			t.Fatalf("%q: Set-Cookie %+v, want %s", c.url, set, c.name)
		}
		planted := httptest.NewRequest(http.MethodGet, "/", nil)
		planted.AddCookie(&http.Cookie{Name: "berth_session", Value: "brs_planted"})
		got, err := s.SessionCookieOf(planted)
		if c.secure && err == nil {
			t.Errorf("%q: the unprefixed cookie %q was read as the session", c.url, got.Value)
		}
		if !c.secure && (err != nil || got.Value != "brs_planted") {
			t.Errorf("%q: the session cookie over http: %v %v", c.url, got, err)
		}
	}
}
