package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// A signed-in person may try only so many user codes at /device that match
// no waiting login (RFC 8628 section 5.1): past the limit, GET and POST are
// too_many_attempts, a real code included, so guessing someone else's code
// is hopeless. Another person is not held back by it.
func TestDeviceUserCodeGuessesAreLimited(t *testing.T) {
	s, company := peopleServer(t)
	started := startDeviceAuthorization(t, http.DefaultClient, s.url)

	guesser := newBrowser(t)
	guesser.get(s.url + "/login/corp")
	_, page := guesser.get(s.url + "/login")
	csrf := csrfOf(t, page)
	refused := -1
	for i := range 30 {
		code := fmt.Sprintf("BBBB-BB%c%c", "BCDFGHJKLM"[i%10], "BCDFGHJKLM"[i/10%10])
		r, page := guesser.get(s.url + "/device?user_code=" + code)
		if strings.Contains(page, "<code>"+string(berth.CodeTooManyAttempts)+"</code>") {
			if r.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("too_many_attempts answered %s", r.Status)
			}
			refused = i
			break
		}
		wantReason(t, "a code that matches nothing", r, page, http.StatusBadRequest, berth.CodeDeviceCodeExpired)
	}
	if refused < 0 || refused > oauth.DefaultFailureLimit {
		t.Fatalf("wrong codes before too_many_attempts: %d, want at most 10", refused)
	}
	r, page := guesser.get(s.url + "/device?user_code=" + url.QueryEscape(started.UserCode))
	wantReason(t, "the real code, after the guesses", r, page, http.StatusTooManyRequests, berth.CodeTooManyAttempts)
	// The refusals are in the audit log, though no approval was sent (it is
	// written behind the requests: wait for it).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		audit := s.apiJSON(t, http.MethodGet, "/api/v1/audit?action=auth.device&code=too_many_attempts", nil, http.StatusOK)
		if events, _ := audit["events"].([]any); len(events) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event of the refused codes: %v", audit)
		}
	}
	r, page = guesser.post(s.url+"/device", url.Values{"csrf": {csrf}, "user_code": {started.UserCode}, "decision": {"approve"}})
	wantReason(t, "approving the real code, after the guesses", r, page, http.StatusTooManyRequests, berth.CodeTooManyAttempts)

	// Another person, signed in on their own, is not held back.
	company.SetPerson(oidctest.Person{Subject: "00u-grace", Username: "grace", Email: "grace@corp.example"})
	other := newBrowser(t)
	other.get(s.url + "/login/corp")
	if r, page := other.get(s.url + "/device?user_code=" + url.QueryEscape(started.UserCode)); r.StatusCode != http.StatusOK || !strings.Contains(page, "Approve") {
		t.Fatalf("another person's code page: %s\n%s", r.Status, page)
	}
}

// The approval page says where and when the login was started, and whether
// that is the address the approving browser comes from: a login someone
// else started and sent as a link shows another address.
func TestDeviceApprovalShowsWhereTheLoginStarted(t *testing.T) {
	s, _ := peopleServer(t)
	elsewhere := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	for _, c := range []struct {
		client *http.Client
		want   string
	}{
		{http.DefaultClient, "from <strong>127.0.0.1</strong>, the address this browser comes from"},
		{elsewhere, "from <strong>127.0.0.2</strong>; this browser comes from 127.0.0.1"},
	} {
		started := startDeviceAuthorization(t, c.client, s.url)
		b := newBrowser(t)
		b.get(s.url + "/login/corp")
		r, page := b.get(started.Complete)
		if r.StatusCode != http.StatusOK || !strings.Contains(page, c.want) || !strings.Contains(page, "calling itself <strong>berth-cli</strong>") {
			t.Errorf("approval page, want %q:\n%s", c.want, page)
		}
	}
}

// deviceStart is what POST /oauth2/device_authorization answers.
type deviceStart struct {
	UserCode string `json:"user_code"`
	Complete string `json:"verification_uri_complete"`
}

// startDeviceAuthorization starts a device login at base through c, as the
// CLI's first request does.
func startDeviceAuthorization(t *testing.T, c *http.Client, base string) deviceStart {
	t.Helper()
	resp, err := c.PostForm(base+"/oauth2/device_authorization", url.Values{"client_id": {"berth-cli"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d deviceStart
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.UserCode == "" || d.Complete == "" {
		t.Fatalf("device authorization: %s %+v %v", resp.Status, d, err)
	}
	return d
}
