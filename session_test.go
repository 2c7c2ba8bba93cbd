package berth_test

import (
	"crypto/rand"
	"regexp"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestUserSessionCheck(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	s, err := berth.NewUserSession(rand.Reader, "p", "idp", "", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Expires.Equal(now.Add(12 * time.Hour)) {
		t.Fatalf("default lifetime: expires %s", s.Expires)
	}
	if err := s.Check(now.Add(12*time.Hour - time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(now.Add(12 * time.Hour)); !berth.IsCode(err, berth.CodeSessionEnded) {
		t.Fatalf("expired: %v", err)
	}
	end := now.Add(time.Minute)
	s.Ended = &end
	if err := s.Check(now.Add(2 * time.Minute)); !berth.IsCode(err, berth.CodeSessionEnded) {
		t.Fatalf("ended: %v", err)
	}
	if id, ok := berth.SessionIDOf(berth.SessionCredentialID(s.ID)); !ok || id != s.ID {
		t.Fatal("credential id round trip")
	}
}

func TestSessionValue(t *testing.T) {
	v, err := berth.NewSessionValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if h := berth.SessionValueHash(v); len(h) != 64 {
		t.Fatalf("hash of a value: %q", h)
	}
	tampered := v[:10] + string(v[10]^1) + v[11:]
	for _, bad := range []string{"", "brs_x", tampered, "brt_" + v[4:]} {
		if berth.SessionValueHash(bad) != "" {
			t.Errorf("SessionValueHash(%q) is not empty", bad)
		}
	}
	if berth.SessionCSRF(v) == berth.SessionCSRF(tampered) || len(berth.SessionCSRF(v)) != 32 {
		t.Fatal("csrf does not depend on the cookie")
	}
}

func TestDeviceAuthorization(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	d, value, err := berth.NewDeviceAuthorization(rand.Reader, "berth-cli", now)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(d.UserCode) {
		t.Fatalf("user code %q", d.UserCode)
	}
	if d.DeviceHash != berth.DeviceCodeHash(value) || d.Status != berth.DevicePending {
		t.Fatalf("%+v", d)
	}
	norm, err := berth.NormalizeUserCode(" " + d.UserCode[:4] + " " + d.UserCode[5:])
	if err != nil || norm != d.UserCode {
		t.Fatalf("normalize: %q, %v", norm, err)
	}
	for _, bad := range []string{"", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJ0", "AEIO-UBCD"} {
		if _, err := berth.NormalizeUserCode(bad); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("NormalizeUserCode(%q): %v", bad, err)
		}
	}

	// First poll: pending. A poll within the interval: slow_down, the
	// interval growing by five seconds.
	ok, poll, err := d.Poll(now)
	if ok || err != nil || poll.SlowDown {
		t.Fatalf("first poll: %v %+v %v", ok, poll, err)
	}
	d.LastPoll = now
	ok, poll, err = d.Poll(now.Add(2 * time.Second))
	if ok || err != nil || !poll.SlowDown || poll.Interval != 10*time.Second {
		t.Fatalf("fast poll: %v %+v %v", ok, poll, err)
	}
	ok, poll, err = d.Poll(now.Add(5 * time.Second))
	if ok || err != nil || poll.SlowDown || poll.Interval == 0 {
		t.Fatalf("poll after the interval: %v %+v %v", ok, poll, err)
	}
	if _, _, err := d.Poll(now.Add(10 * time.Minute)); !berth.IsCode(err, berth.CodeDeviceCodeExpired) {
		t.Fatalf("expired: %v", err)
	}
	d.Status = berth.DeviceDenied
	if _, _, err := d.Poll(now); !berth.IsCode(err, berth.CodeDeviceCodeDenied) {
		t.Fatalf("denied: %v", err)
	}
	d.Status = berth.DeviceApproved
	if ok, _, err := d.Poll(now); !ok || err != nil {
		t.Fatalf("approved: %v %v", ok, err)
	}
	d.Status = berth.DeviceRedeemed
	if _, _, err := d.Poll(now); !berth.IsCode(err, berth.CodeDeviceCodeExpired) {
		t.Fatalf("redeemed: %v", err)
	}
}
