package signin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// VerificationPath is the page a person opens to approve a device login
// (RFC 8628 section 3.3); the device authorization endpoint is
// oauth.DeviceAuthorizationPath (section 3.1).
const VerificationPath = "/device"

var _ oauth.People = (*Service)(nil)

// deviceAuthorization answers section 3.2: a device code for the client, the
// user code for the person, and where to enter it.
func (h *Handler) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	w.Header().Set("Cache-Control", "no-store")
	d, code, err := h.startDeviceLogin(r)
	if err != nil {
		oauth.WriteError(w, r, err, h.URL, h.logger())
		return
	}
	verify := h.baseURL(r) + VerificationPath
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code":               code,
		"user_code":                 d.UserCode,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?" + url.Values{"user_code": {d.UserCode}}.Encode(),
		"expires_in":                int(d.Expires.Sub(d.Created) / time.Second),
		"interval":                  int(d.Interval / time.Second),
	})
}

// startDeviceLogin stores a new device login for the client of r, unless
// r's address started too many, the form is bad or no person could approve
// it (no identity provider).
func (h *Handler) startDeviceLogin(r *http.Request) (berth.DeviceAuthorization, string, error) {
	if h.DeviceStarts != nil {
		source := oauth.SourceAddress(r)
		if ok, wait := h.DeviceStarts.Allow(source); !ok {
			return berth.DeviceAuthorization{}, "", tooManyDeviceStarts(source, wait)
		}
		h.DeviceStarts.Fail(source)
	}
	if err := r.ParseForm(); err != nil {
		return berth.DeviceAuthorization{}, "", berth.Errorf(berth.CodeInvalid, "the body is not a form").
			WithHint("POST client_id=berth-cli as application/x-www-form-urlencoded")
	}
	ps, err := h.Store.FindIdentityProviders(r.Context())
	if err == nil && len(ps) == 0 {
		err = berth.Errorf(berth.CodeIdPUnknown, "this registry has no identity provider, so no person can sign in to approve a device login").
			WithHint("log in with a client secret (berth login HOST --client-id ID --client-secret-stdin), or ask an owner to run berth idp add NAME --issuer URL --client-id ID --client-secret-stdin")
	}
	var d berth.DeviceAuthorization
	var code string
	for attempt := 0; err == nil; attempt++ {
		d, code, err = berth.NewDeviceAuthorization(h.rand(), r.PostForm.Get("client_id"), h.now())
		d.Source = oauth.SourceAddress(r)
		if err == nil {
			err = h.Store.CreateDeviceAuthorization(r.Context(), d)
		}
		if berth.IsCode(err, berth.CodeConflict) && attempt < 3 {
			err = nil // a user code in use: draw another
			continue
		}
		break
	}
	return d, code, err
}

// tooManyDeviceStarts refuses a device login start from an address that
// started too many in the limiter's window.
func tooManyDeviceStarts(source string, wait time.Duration) *berth.Error {
	secs := oauth.RetryAfterSeconds(wait)
	return berth.Errorf(berth.CodeTooManyAttempts, "too many device logins started from address %s; try again in %d seconds", source, secs).
		WithHint("finish the device login already started (open the link berth login printed), or wait %d seconds and run berth login HOST again", secs).
		WithDetail("retry_after", secs)
}

// pendingFor is findPending for the signed-in caller, who may try only so
// many codes that match nothing (DeviceGuesses): too_many_attempts then.
func (h *Handler) pendingFor(ctx context.Context, caller *berth.Caller, typed string) (berth.DeviceAuthorization, error) {
	if h.DeviceGuesses == nil {
		return h.findPending(ctx, typed)
	}
	key := caller.Actor.ID
	if ok, wait := h.DeviceGuesses.Allow(key); !ok {
		secs := oauth.RetryAfterSeconds(wait)
		return berth.DeviceAuthorization{}, berth.Errorf(berth.CodeTooManyAttempts, "too many codes that match no device login were tried as %s; try again in %d seconds", caller.Actor.Name, secs).
			WithHint("open the link berth login printed, or type the code it shows exactly; wait %d seconds first", secs).
			WithDetail("retry_after", secs)
	}
	d, err := h.findPending(ctx, typed)
	if berth.IsCode(err, berth.CodeDeviceCodeExpired) && d.UserCode == "" || berth.IsCode(err, berth.CodeInvalid) {
		h.DeviceGuesses.Fail(key) // a code that names no login: mistyped, or guessed
	}
	return d, err
}

// findPending returns the pending device login of the user code typed or
// linked, or the refusal a person reads.
func (h *Handler) findPending(ctx context.Context, typed string) (berth.DeviceAuthorization, error) {
	code, err := berth.NormalizeUserCode(typed)
	if err != nil {
		return berth.DeviceAuthorization{}, err
	}
	d, err := h.Store.FindDeviceAuthorizationByUserCode(ctx, code)
	if berth.IsCode(err, berth.CodeNotFound) {
		return d, berth.Errorf(berth.CodeDeviceCodeExpired, "no device login is waiting for the code %s: it expired, was used, or was mistyped", code).
			WithHint("run berth login HOST again and open the link it prints")
	} else if err != nil {
		return d, err
	}
	if _, _, err := d.Poll(h.now()); err != nil {
		return d, err
	}
	if d.Status != berth.DevicePending {
		return d, berth.Errorf(berth.CodeDeviceCodeExpired, "the login with code %s was already approved", code).
			WithHint("run berth login HOST again for another login")
	}
	return d, nil
}

// devicePage is the verification page (RFC 8628 section 3.3): without a code,
// a form to type one; with one, the person signs in first (redirected to
// /login and back), then sees what asks and one form to approve or deny.
func (h *Handler) devicePage(w http.ResponseWriter, r *http.Request) {
	typed := r.URL.Query().Get("user_code")
	if typed == "" {
		render(w, http.StatusOK, "device-code", nil)
		return
	}
	caller, value := h.who(r)
	if caller == nil {
		next := VerificationPath + "?" + url.Values{"user_code": {typed}}.Encode()
		http.Redirect(w, r, "/login?"+url.Values{"next": {next}}.Encode(), http.StatusSeeOther)
		return
	}
	d, err := h.pendingFor(r.Context(), caller, typed)
	if berth.IsCode(err, berth.CodeTooManyAttempts) {
		// Guessing codes through links leaves a trace, as deciding does.
		h.audit(berth.NewAuditEvent(berth.WithCaller(r.Context(), caller), berth.AuditAuthDevice, "", err))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sess, err := h.SessionByCookie(r.Context(), value)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	render(w, http.StatusOK, "device-approve", map[string]any{
		"Client": d.Client, "Who": caller.Actor.Name, "Host": r.Host, "UserCode": d.UserCode,
		"CSRF": berth.SessionCSRF(value), "Expires": sess.Expires.Format(time.RFC3339),
		"Source": d.Source, "Here": oauth.SourceAddress(r), "Started": d.Created.UTC().Format(time.RFC3339),
		"Ago": berth.FormatLifetime(h.now().Sub(d.Created).Round(time.Second)),
	})
}

// deviceDecide records the person's decision: approval binds the login to
// a new session of theirs, which expires when the browser's does but is
// not ended by the browser's sign-out (the terminal may be another
// machine; berth logout HOST ends it), and which the client's refresh token
// will be bound to; denial makes the client's next poll access_denied.
func (h *Handler) deviceDecide(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	caller, value := h.who(r)
	if caller == nil {
		h.fail(w, r, berth.Errorf(berth.CodeSessionEnded, "this browser is not signed in, so it cannot approve a device login").
			WithHint("open the link berth login printed again; it signs you in first"))
		return
	}
	err := checkCSRF(r, value)
	var d berth.DeviceAuthorization
	if err == nil {
		d, err = h.pendingFor(ctx, caller, r.PostFormValue("user_code"))
	}
	decision := r.PostFormValue("decision")
	if err == nil && decision != "approve" && decision != "deny" {
		err = berth.Errorf(berth.CodeInvalid, "the decision is approve or deny").
			WithHint("open the verification page again and press Approve or Deny")
	}
	var browser berth.UserSession
	if err == nil {
		browser, err = h.SessionByCookie(ctx, value)
	}
	if err == nil {
		now := h.now()
		if decision == "deny" {
			d.Status = berth.DeviceDenied
		} else {
			var s berth.UserSession
			s, err = berth.NewUserSession(h.rand(), caller.Actor.ID, browser.ProviderID, "", now, browser.Expires.Sub(now))
			if err == nil {
				err = h.Store.CreateSession(ctx, s)
			}
			d.Status, d.PrincipalID, d.SessionID = berth.DeviceApproved, caller.Actor.ID, s.ID
		}
		if err == nil {
			err = h.Store.UpdateDeviceAuthorization(ctx, d, berth.DevicePending)
		}
	}
	ev := berth.NewAuditEvent(berth.WithCaller(ctx, caller), berth.AuditAuthDevice, d.Client, err)
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	ev.Detail["decision"], ev.Detail["user_code"] = decision, d.UserCode
	h.audit(ev)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if decision == "deny" {
		render(w, http.StatusOK, "done", map[string]string{"Title": "Login denied", "Text": "The device login was denied; the terminal that asked will say so."})
		return
	}
	render(w, http.StatusOK, "done", map[string]string{"Title": "Login approved", "Text": "You may close this page; the terminal finishes the login by itself."})
}

// RedeemDeviceCode answers one poll of the token endpoint with the device
// code value (RFC 8628 section 3.5): the session the login is bound to, once
// approved (and the code is then used up), or device_code_pending (with
// detail slow_down when the client polls too fast), device_code_expired,
// device_code_denied.
func (s *Service) RedeemDeviceCode(ctx context.Context, value string) (berth.UserSession, error) {
	d, err := s.Store.FindDeviceAuthorizationByHash(ctx, berth.DeviceCodeHash(value))
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.UserSession{}, berth.Errorf(berth.CodeDeviceCodeExpired, "no device login has this device code: it expired and was removed, or was never issued here").
			WithHint("run berth login HOST again")
	} else if err != nil {
		return berth.UserSession{}, err
	}
	now := s.now()
	approved, poll, err := d.Poll(now)
	if err != nil {
		return berth.UserSession{}, err
	}
	if !approved {
		prev := d.Status
		d.LastPoll, d.Interval = now, poll.Interval
		if err := s.Store.UpdateDeviceAuthorization(ctx, d, prev); err != nil && !berth.IsCode(err, berth.CodeConflict) {
			return berth.UserSession{}, err
		}
		e := berth.Errorf(berth.CodeDeviceCodePending, "the login with code %s waits for approval in the browser", d.UserCode).
			WithHint("open the printed link and approve; berth login keeps polling every %d seconds", int(poll.Interval/time.Second)).
			WithDetail("interval", int(poll.Interval/time.Second))
		if poll.SlowDown {
			e.WithDetail("slow_down", true)
		}
		return berth.UserSession{}, e
	}
	d.Status, d.LastPoll = berth.DeviceRedeemed, now
	if err := s.Store.UpdateDeviceAuthorization(ctx, d, berth.DeviceApproved); berth.IsCode(err, berth.CodeConflict) {
		return berth.UserSession{}, berth.Errorf(berth.CodeDeviceCodeExpired, "this device code was already used for a login").WithHint("run berth login HOST again")
	} else if err != nil {
		return berth.UserSession{}, err
	}
	return s.CheckSession(ctx, d.SessionID)
}
