package berth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhooks tell other systems what happens in berth. A webhook is an URL and
// the event types it subscribes to; each event of those types becomes one
// delivery to it: a CloudEvents 1.0 document in structured JSON mode
// (Content-Type application/cloudevents+json), signed with the webhook's own
// secret, queued in the metadata store (so it survives a restart) and retried
// with exponential backoff until it is answered 2xx or WebhookMaxAttempts
// attempts have failed. The deliveries of one webhook are made in the order
// they were queued: one is not attempted before the one before it was
// delivered or given up.
//
// Verifying a delivery. Each request carries the header
//
//	Berth-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// where t is the Unix time of the attempt and v1 the hex HMAC-SHA256, keyed
// with the webhook's secret (the whole "brw_…" value that berth webhook create
// printed), of t, a '.' and the request body, byte for byte. A receiver
// recomputes the HMAC over the body it received, compares it in constant time,
// and refuses a t too far from its own clock (five minutes, say), so that a
// captured request cannot be replayed later; the CloudEvents id, the same on
// every attempt of one event, lets it drop a retry it has already handled.
// VerifyWebhookSignature is that check.

// EventType names what a webhook event reports. Webhooks subscribe to these
// names; the CloudEvents type of a delivery is the name led by
// CloudEventTypePrefix ("dev.berth.secret.expiring"), the reverse-DNS form
// the CloudEvents specification recommends. The names are stable.
type EventType string

const (
	// EventSecretExpiring: a client secret expires within 60, 30, 7 or 1
	// days; sent once per secret and threshold (the smallest one crossed).
	// Subject "principals/NAME/secrets/ID"; data SecretEventData.
	EventSecretExpiring EventType = "secret.expiring"
	// EventSecretExpired: a client secret expired; sent once per secret.
	// Subject and data as EventSecretExpiring.
	EventSecretExpired EventType = "secret.expired"
	// EventConnectionVerifyFailed: the scheduled verification of a service
	// connection failed; sent once while it stays broken, again only after a
	// verification passed. Subject "connections/NAME".
	EventConnectionVerifyFailed EventType = "connection.verify_failed"
	// EventPermissionRequested: a registered pipeline was refused by a
	// connection that does not permit it (audit action
	// pipeline.permission_requested). Subject "connections/NAME"; data
	// AuditEventData.
	EventPermissionRequested EventType = "pipeline.permission_requested"
	// EventAuthDenied: an authentication or a registry request was refused
	// (denied audit events of auth.* and registry.* actions), at most one
	// per principal or client id per AuthDeniedInterval; data AuditEventData,
	// whose Suppressed counts those left out since the last one. Subject
	// "principals/NAME", or "clients/ID" for a client id that names no
	// principal.
	EventAuthDenied EventType = "auth.denied"
	// EventImagePushed: a manifest was stored (PUT, answered 201). Subject
	// "repositories/NAME"; data ImageEventData.
	EventImagePushed EventType = "image.pushed"
	// EventImageDeleted: a manifest or a tag was deleted (DELETE, answered
	// 202). Subject and data as EventImagePushed.
	EventImageDeleted EventType = "image.deleted"
	// EventQuotaWarning: a push took a quota's scope to 80% or 95% of its
	// --max-size (once per level crossed, again after usage fell below it).
	// Subject "quotas/SCOPE"; data QuotaEventData.
	EventQuotaWarning EventType = "quota.warning"
	// EventUpstreamVerifyFailed: the scheduled verification of a
	// pull-through cache's upstream failed (it is down, or refuses the
	// stored credential); sent once while it stays broken, again only
	// after a verification passed. Subject "upstreams/NAME".
	EventUpstreamVerifyFailed EventType = "upstream.verify_failed"
)

// EventTypes are every event type, in the order berth documents them.
var EventTypes = []EventType{
	EventSecretExpiring, EventSecretExpired, EventConnectionVerifyFailed, EventPermissionRequested,
	EventAuthDenied, EventImagePushed, EventImageDeleted, EventQuotaWarning, EventUpstreamVerifyFailed,
}

// CloudEventTypePrefix leads the CloudEvents type of every event.
const CloudEventTypePrefix = "dev.berth."

// CloudEventType returns the CloudEvents type of t: "dev.berth." + t.
func (t EventType) CloudEventType() string { return CloudEventTypePrefix + string(t) }

// ParseEventTypes returns the event types names lists (a repeated one once, in
// the order first given), or invalid, naming the first unknown one, when one
// is not an event type or none is given.
func ParseEventTypes(names []string) ([]EventType, error) {
	known := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		known[i] = string(t)
	}
	hint := "subscribe to one or more of " + strings.Join(known, ", ")
	var out []EventType
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		t := EventType(strings.TrimPrefix(n, CloudEventTypePrefix))
		if !slices.Contains(EventTypes, t) {
			return nil, Errorf(CodeInvalid, "%q is not a webhook event type", Truncate(n, 60)).WithHint("%s", hint)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, Errorf(CodeInvalid, "a webhook subscribes to no event").WithHint("%s, as --events secret.expiring,image.pushed", hint)
	}
	return out, nil
}

// Event is something that happened that webhooks may subscribe to.
type Event struct {
	// ID is unique per event (a UUID): the CloudEvents id, the same on every
	// attempt and every webhook, by which a receiver drops duplicates.
	ID      string
	Type    EventType
	Time    time.Time
	Subject string
	// Data is the event's data: a JSON object, whose form each EventType
	// documents.
	Data json.RawMessage
}

// NewEvent returns an event of type t about subject, whose data is data
// encoded as JSON, with a fresh ID drawn from rand, at now.
func NewEvent(rand io.Reader, t EventType, subject string, now time.Time, data any) (Event, error) {
	id, err := newUUID(rand)
	if err != nil {
		return Event{}, fmt.Errorf("new %s event: %w", t, err)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("new %s event: %w", t, err)
	}
	return Event{ID: id, Type: t, Time: now, Subject: subject, Data: b}, nil
}

// EventPublisher takes events for the webhooks subscribed to them.
// internal/webhook.Publisher implements it; what emits events (the /v2/
// handler) depends on this interface only.
type EventPublisher interface {
	// Publish queues e for delivery without waiting for the store. A zero
	// e.ID or e.Time is filled in. It never fails: an event it cannot keep is
	// logged and counted.
	Publish(ctx context.Context, e Event)
}

// ImageEventData is the data of image.pushed and image.deleted.
type ImageEventData struct {
	Repository string `json:"repository"`
	// Digest is the manifest's; "" when the registry's DELETE removed a tag
	// by name (a delete through the API names the digest the tag held).
	Digest    Digest `json:"digest,omitempty"`
	Tag       string `json:"tag,omitempty"`
	MediaType string `json:"media_type,omitempty"`
	Size      int64  `json:"size,omitempty"`
	// Actor is the name of the principal that pushed or deleted, "" when
	// the registry is open.
	Actor string `json:"actor,omitempty"`
}

// ImageEvent returns the event (without ID and Time, which Publish fills
// in) of an image pushed or deleted.
func ImageEvent(t EventType, d ImageEventData) Event {
	b, _ := json.Marshal(d) // strings and numbers only: it cannot fail
	return Event{Type: t, Subject: "repositories/" + d.Repository, Data: b}
}

// QuotaEventData is the data of quota.warning.
type QuotaEventData struct {
	Scope Scope `json:"scope"`
	// Percent is the level crossed: 80 or 95.
	Percent    int   `json:"percent"`
	LimitBytes int64 `json:"limit_bytes"`
	UsageBytes int64 `json:"usage_bytes"`
	// Repository is where the push that crossed it went.
	Repository string `json:"repository"`
}

// QuotaWarningEvent returns the event (without ID and Time) of a quota
// crossing a warning level.
func QuotaWarningEvent(d QuotaEventData) Event {
	b, _ := json.Marshal(d) // strings and numbers only: it cannot fail
	return Event{Type: EventQuotaWarning, Subject: "quotas/" + d.Scope.String(), Data: b}
}

// QuotaWarningLevel returns the warning level (95, 80 or 0) usage bytes reach
// of limit (0: no bound, no level).
func QuotaWarningLevel(usage, limit int64) int {
	switch {
	case limit <= 0:
		return 0
	case usage*100 >= limit*95:
		return 95
	case usage*100 >= limit*80:
		return 80
	}
	return 0
}

// SecretEventData is the data of secret.expiring and secret.expired. For
// a client secret it names the principal and the secret; for an upstream
// registry's credential, Upstream (and its Username), the principal fields
// empty.
type SecretEventData struct {
	Principal   string `json:"principal"`
	PrincipalID string `json:"principal_id"`
	SecretID    string `json:"secret_id"`
	Hint        string `json:"hint"`
	// Kind is "personal_access_token" when the notice is about one of a
	// person's tokens (SecretID is then its id); "" for a client secret.
	Kind      string    `json:"kind,omitempty"`
	Upstream  string    `json:"upstream,omitempty"`
	Username  string    `json:"username,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// ThresholdDays is the notice's threshold (60, 30, 7, 1); 0 for
	// secret.expired.
	ThresholdDays int `json:"threshold_days,omitempty"`
	// Connections are the service connections using the secret.
	Connections []string `json:"connections,omitempty"`
}

// AuditEventData is the data of events derived from the audit log:
// auth.denied and pipeline.permission_requested. It holds what the audit
// event records, never a credential.
type AuditEventData struct {
	Action       AuditAction `json:"action"`
	Actor        string      `json:"actor,omitempty"`
	ActorID      string      `json:"actor_id,omitempty"`
	Target       string      `json:"target,omitempty"`
	Reason       Code        `json:"reason,omitempty"`
	Source       string      `json:"source,omitempty"`
	RequestID    string      `json:"request_id,omitempty"`
	CredentialID string      `json:"credential_id,omitempty"`
	Connection   string      `json:"connection,omitempty"`
	Pipeline     string      `json:"pipeline,omitempty"`
	Run          string      `json:"ci_run,omitempty"`
	// Suppressed counts the auth.denied events of the same principal left
	// out, by the rate limit, since the previous one sent.
	Suppressed int `json:"suppressed,omitempty"`
}

// AuthDeniedInterval is the least time between two auth.denied events of
// the same principal or client id.
const AuthDeniedInterval = time.Minute

// DeniedWorthANotice reports whether e is a refusal worth an auth.denied
// notice: a denied authentication or registry request, except what every
// well-behaved client meets on its way to success. credentials_missing is
// the challenge a client gets before it logs in, and scope_not_granted is a
// token that lacks a scope the request needs, which the client answers by
// asking for a new token (podman search, regctl and others do it routinely);
// if that token is refused, its own refusal (role_missing, …) is noticed.
func DeniedWorthANotice(e AuditEvent) bool {
	if e.Result != AuditDenied {
		return false
	}
	switch e.Reason {
	case CodeCredentialsMissing, CodeScopeNotGranted:
		return false
	}
	return strings.HasPrefix(string(e.Action), "auth.") || strings.HasPrefix(string(e.Action), "registry.")
}

// SecretNoticeThresholds are when, before a secret expires, secret.expiring
// is sent: each once, largest first.
var SecretNoticeThresholds = []int{60, 30, 7, 1}

// ExpiredNoticeWindow bounds how long after its expiry a secret is still
// announced as expired: secrets that expired before webhooks existed are
// not announced all at once.
const ExpiredNoticeWindow = 7 * 24 * time.Hour

// SecretNotice returns the notice due for s at now, and the key that makes it
// once (see WebhookStore.EnqueueDeliveries): secret.expired once s has
// expired (within ExpiredNoticeWindow), else secret.expiring with the
// smallest threshold of SecretNoticeThresholds that s's remaining lifetime
// has reached. ok is false for a removed secret and one with no notice due.
// A secret that skips thresholds (created with 20 days left, or not looked at
// for weeks) gets the smallest one only.
func SecretNotice(s Secret, now time.Time) (t EventType, thresholdDays int, once string, ok bool) {
	switch s.State(now) {
	case SecretRevoked:
		return "", 0, "", false
	case SecretExpired:
		if now.Sub(s.Expires) > ExpiredNoticeWindow {
			return "", 0, "", false
		}
		return EventSecretExpired, 0, string(EventSecretExpired) + ":" + s.ID, true
	}
	left := s.Expires.Sub(now)
	for i := len(SecretNoticeThresholds) - 1; i >= 0; i-- {
		d := SecretNoticeThresholds[i]
		if left <= time.Duration(d)*24*time.Hour {
			return EventSecretExpiring, d, string(EventSecretExpiring) + ":" + s.ID + ":" + strconv.Itoa(d) + "d", true
		}
	}
	return "", 0, "", false
}

// PATNotice is SecretNotice for a personal access token: the same
// thresholds and the same once keys, on the token's id.
func PATNotice(t PersonalAccessToken, now time.Time) (EventType, int, string, bool) {
	return SecretNotice(Secret{ID: t.ID, Hint: t.Hint, Created: t.Created, Expires: t.Expires, Revoked: t.Revoked}, now)
}

// Webhook limits and retry schedule.
const (
	// WebhookMaxAttempts is how many times a delivery is attempted before it
	// is given up (failed).
	WebhookMaxAttempts = 10
	// WebhookRetryBase is the wait after the first failed attempt; each
	// further failure doubles it, up to WebhookRetryMax: 30s, 1m, 2m, 4m,
	// 8m, 16m, 32m, 1h, 1h (about 3 h in all).
	WebhookRetryBase = 30 * time.Second
	WebhookRetryMax  = time.Hour
	// MaxWebhookDescriptionLength bounds a webhook's description, in bytes.
	MaxWebhookDescriptionLength = 256
	// WebhookSignatureHeader is the header that carries the signature.
	WebhookSignatureHeader = "Berth-Signature"
	// WebhookSignatureTolerance is how far the signature's time may be from
	// the receiver's clock in VerifyWebhookSignature.
	WebhookSignatureTolerance = 5 * time.Minute
	// CloudEventsContentType is the Content-Type of a delivery.
	CloudEventsContentType = "application/cloudevents+json"
)

// WebhookRetryDelay returns how long to wait after the attempts-th failed
// attempt (1 for the first): WebhookRetryBase doubled attempts-1 times, at
// most WebhookRetryMax.
func WebhookRetryDelay(attempts int) time.Duration {
	d := WebhookRetryBase
	for i := 1; i < attempts && d < WebhookRetryMax; i++ {
		d *= 2
	}
	return min(d, WebhookRetryMax)
}

// WebhookSecretPrefix starts every webhook signing secret. Its shape is that
// of a client secret (prefix, 32 random letters and digits, a CRC-32
// checksum), so that a scanner can find it.
const WebhookSecretPrefix = "brw_"

// IsWebhookSecret reports whether s has the format and checksum of a webhook
// signing secret: what a scanner confirms before it reports one.
func IsWebhookSecret(s string) bool {
	return hasCredentialShape(s, WebhookSecretPrefix, SecretLength)
}

// WebhookSecret is a webhook's signing key. Unlike a client secret, berth
// keeps the value, since it signs with it; like one, every way of printing it
// redacts it: String, GoString, every fmt verb, MarshalJSON, MarshalText and
// slog's LogValue write "brw_…". Reveal is the one way out: for signing, for
// the store, and for the one response that shows it.
type WebhookSecret struct{ v *string }

// NewWebhookSecret returns a fresh signing secret drawn from rand.
func NewWebhookSecret(rand io.Reader) (WebhookSecret, error) {
	s, err := newCredentialValue(rand, WebhookSecretPrefix, secretBodyLength)
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("new webhook secret: %w", err)
	}
	return WebhookSecret{v: &s}, nil
}

// WebhookSecretOf wraps a stored value (stores read it back with this).
func WebhookSecretOf(value string) WebhookSecret {
	if value == "" {
		return WebhookSecret{}
	}
	return WebhookSecret{v: &value}
}

// Reveal returns the value itself.
func (s WebhookSecret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether s holds no value.
func (s WebhookSecret) IsZero() bool { return s.v == nil }

// String returns "brw_…", or "" for the zero value.
func (s WebhookSecret) String() string {
	if s.v == nil {
		return ""
	}
	return WebhookSecretPrefix + "…"
}

func (s WebhookSecret) GoString() string {
	return "berth.WebhookSecret(" + strconv.Quote(s.String()) + ")"
}

// Format redacts for every verb.
func (s WebhookSecret) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, s.String(), s.GoString())
}

func (s WebhookSecret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
func (s WebhookSecret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
func (s WebhookSecret) LogValue() slog.Value         { return slog.StringValue(s.String()) }

// Webhook is a subscription: berth posts the events of Events to URL.
type Webhook struct {
	ID          string      `json:"id"` // a UUID
	URL         string      `json:"url"`
	Events      []EventType `json:"events"`
	Description string      `json:"description,omitempty"`
	// Secret signs every delivery; it is never written out (see
	// WebhookSecret).
	Secret  WebhookSecret `json:"-"`
	Created time.Time     `json:"created_at"`
}

// NewWebhook returns a webhook posting events to url, with a fresh ID and
// secret drawn from rand, created at now. It returns invalid for a URL that
// ValidateOutboundURL refuses, an unknown event type or none, and a
// description longer than MaxWebhookDescriptionLength bytes or holding
// control characters.
func NewWebhook(rand io.Reader, url string, events []EventType, description string, now time.Time) (Webhook, error) {
	if err := ValidateOutboundURL("webhook", url); err != nil {
		return Webhook{}, err
	}
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = string(e)
	}
	events, err := ParseEventTypes(names)
	if err != nil {
		return Webhook{}, err
	}
	if err := validateWebhookDescription(description); err != nil {
		return Webhook{}, err
	}
	id, err := newUUID(rand)
	if err != nil {
		return Webhook{}, fmt.Errorf("new webhook: %w", err)
	}
	secret, err := NewWebhookSecret(rand)
	if err != nil {
		return Webhook{}, err
	}
	return Webhook{ID: id, URL: url, Events: events, Description: description, Secret: secret, Created: now}, nil
}

func validateWebhookDescription(d string) error {
	return validateLine("the webhook's description", d, MaxWebhookDescriptionLength)
}

// Subscribes reports whether w takes events of type t.
func (w Webhook) Subscribes(t EventType) bool { return slices.Contains(w.Events, t) }

// ParseWebhookID returns id in canonical form, or invalid: webhook and
// delivery ids are UUIDs.
func ParseWebhookID(what, id string) (string, error) {
	s, err := parseUUID(id)
	if err != nil {
		return "", Errorf(CodeInvalid, "%s id %q is not a UUID: %v", what, Truncate(id, 40), err).
			WithHint("berth webhook list shows the ids of webhooks; berth webhook deliveries ID those of its deliveries")
	}
	return s, nil
}

// WebhookNotFound is the error of a webhook id that names none.
func WebhookNotFound(id string) *Error {
	return Errorf(CodeNotFound, "no webhook has id %s", id).WithHint("berth webhook list shows the webhooks")
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

const (
	// DeliveryPending deliveries are queued, waiting for their turn or their
	// next attempt.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered deliveries were answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed deliveries were given up after WebhookMaxAttempts.
	DeliveryFailed DeliveryStatus = "failed"
)

// Delivery is one event on its way to one webhook, and the log of its
// attempts.
type Delivery struct {
	ID        string `json:"id"` // a UUID
	WebhookID string `json:"webhook_id"`
	// Seq orders the deliveries of the store, hence of each webhook:
	// assigned by EnqueueDeliveries, increasing.
	Seq       int64     `json:"seq"`
	EventID   string    `json:"event_id"`
	EventType EventType `json:"event_type"`
	Subject   string    `json:"subject,omitempty"`
	// Body is the CloudEvents document, byte for byte what every attempt
	// sends.
	Body   []byte         `json:"-"`
	Status DeliveryStatus `json:"status"`
	// Attempts counts the attempts made so far.
	Attempts int `json:"attempts"`
	// NextAttempt is, while pending, the earliest time of the next attempt.
	NextAttempt time.Time `json:"next_attempt_at,omitzero"`
	// LastAttempt is when the last attempt was made; zero before the first.
	LastAttempt time.Time `json:"last_attempt_at,omitzero"`
	// LastHTTPStatus is the status the last attempt was answered with; 0 when
	// it got no answer (or none was made).
	LastHTTPStatus int `json:"last_http_status,omitempty"`
	// LastError says why the last attempt failed; "" when it did not.
	LastError string    `json:"last_error,omitempty"`
	Created   time.Time `json:"created_at"`
	// Completed is when the delivery was delivered or given up; zero while
	// pending.
	Completed time.Time `json:"completed_at,omitzero"`
	// RedeliveryOf is the id of the delivery this one repeats; "" for an
	// event's first delivery.
	RedeliveryOf string `json:"redelivery_of,omitempty"`
}

// MaxDeliveryErrorLength bounds Delivery.LastError, in bytes.
const MaxDeliveryErrorLength = 512

// NewDelivery returns a pending delivery of e, encoded as body, to the
// webhook webhookID, with a fresh ID drawn from rand, due at now.
func NewDelivery(rand io.Reader, webhookID string, e Event, body []byte, now time.Time) (Delivery, error) {
	id, err := newUUID(rand)
	if err != nil {
		return Delivery{}, fmt.Errorf("new delivery: %w", err)
	}
	return Delivery{ID: id, WebhookID: webhookID, EventID: e.ID, EventType: e.Type, Subject: e.Subject, Body: body,
		Status: DeliveryPending, NextAttempt: now, Created: now}, nil
}

// Attempted returns d after an attempt made at now that was answered with
// httpStatus (0 for no answer) or failed with err (nil for an answer): delivered
// on a 2xx answer; otherwise failed after the WebhookMaxAttempts-th attempt,
// and still pending, due WebhookRetryDelay later, before it.
func (d Delivery) Attempted(now time.Time, httpStatus int, err error) Delivery {
	d.Attempts++
	d.LastAttempt, d.LastHTTPStatus, d.LastError = now, httpStatus, ""
	if err == nil && httpStatus >= 200 && httpStatus < 300 {
		d.Status, d.Completed, d.NextAttempt = DeliveryDelivered, now, time.Time{}
		return d
	}
	switch {
	case err != nil:
		d.LastError = Truncate(err.Error(), MaxDeliveryErrorLength)
	default:
		d.LastError = fmt.Sprintf("answered HTTP %d, not 2xx", httpStatus)
	}
	if d.Attempts >= WebhookMaxAttempts {
		d.Status, d.Completed, d.NextAttempt = DeliveryFailed, now, time.Time{}
		return d
	}
	d.NextAttempt = now.Add(WebhookRetryDelay(d.Attempts))
	return d
}

// Redelivery returns a new pending delivery of d's event, with the same
// body, queued at now behind the webhook's other deliveries. It returns
// conflict while d is still pending: it will be attempted anyway.
func (d Delivery) Redelivery(rand io.Reader, now time.Time) (Delivery, error) {
	if d.Status == DeliveryPending {
		return Delivery{}, Errorf(CodeConflict, "delivery %s is still queued (%d attempts so far); it is attempted again without being asked", d.ID, d.Attempts).
			WithHint("berth webhook deliveries %s shows when its next attempt is due", d.WebhookID)
	}
	id, err := newUUID(rand)
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver: %w", err)
	}
	return Delivery{ID: id, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, Subject: d.Subject,
		Body: d.Body, Status: DeliveryPending, NextAttempt: now, Created: now, RedeliveryOf: d.ID}, nil
}

// SignWebhook returns the Berth-Signature value of body sent at t:
// "t=UNIX,v1=" and the hex HMAC-SHA256, keyed with secret, of UNIX + "." +
// body.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, ts)
	io.WriteString(m, ".")
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhookSignature checks header, a Berth-Signature value, against
// body as received and the webhook's secret, at now: it returns nil when one
// of its v1 values is the HMAC of its t and body and t is within tolerance of
// now (WebhookSignatureTolerance when tolerance is 0), and invalid otherwise.
func VerifyWebhookSignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = WebhookSignatureTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return Errorf(CodeInvalid, "the %s header is not t=UNIX,v1=HEX", WebhookSignatureHeader)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return Errorf(CodeInvalid, "the %s header was made at %s, %s from now; a replay is refused", WebhookSignatureHeader,
			formatTime(time.Unix(unix, 0)), d.Round(time.Second))
	}
	want := webhookMAC(secret, ts, body)
	for _, s := range sigs {
		if subtle.ConstantTimeCompare(s, want) == 1 {
			return nil
		}
	}
	return Errorf(CodeInvalid, "the %s does not match the body: it was not signed with this webhook's secret, or the body was altered", WebhookSignatureHeader)
}

// Audit actions of webhook changes. Target is the webhook's id; Detail holds
// "url" (and "delivery_id" of a redelivery).
const (
	AuditWebhookCreate    AuditAction = "webhook.create"
	AuditWebhookDelete    AuditAction = "webhook.delete"
	AuditWebhookRedeliver AuditAction = "webhook.redeliver"
)

// WebhookStore persists webhooks and their delivery queue. It decides
// nothing: subscription matching, retry timing and ordering rules are this
// file's and internal/webhook's. Times are stored to the microsecond.
type WebhookStore interface {
	// CreateWebhook stores w, its secret's value included. It returns
	// conflict when a webhook with w.ID exists, and nothing changes.
	CreateWebhook(ctx context.Context, w Webhook) error
	// FindWebhookByID returns the webhook, its secret included, or
	// not_found.
	FindWebhookByID(ctx context.Context, id string) (Webhook, error)
	// FindWebhooks returns every webhook, secrets included, ordered by Created
	// then ID; an empty slice when there is none.
	FindWebhooks(ctx context.Context) ([]Webhook, error)
	// SetWebhookSecret replaces the stored secret of webhook id, or returns
	// not_found. It changes how the secret is kept (sealing one stored in
	// plain text), never the value receivers verify signatures with.
	SetWebhookSecret(ctx context.Context, id string, secret WebhookSecret) error
	// DeleteWebhook deletes the webhook and all its deliveries, or returns
	// not_found.
	DeleteWebhook(ctx context.Context, id string) error
	// EnqueueDeliveries stores ds, in one transaction, assigning each a Seq
	// greater than any assigned before, in the order given, and writes the
	// Seqs back into ds. When once is not empty it is recorded in the same
	// transaction, and if it was recorded before nothing is stored and it
	// returns false: that is how a notice is sent once, even by several
	// replicas (once is recorded also when ds is empty). It returns
	// not_found when a delivery names no webhook, and conflict when one's ID
	// exists; either way nothing changes.
	EnqueueDeliveries(ctx context.Context, once string, ds []Delivery) (bool, error)
	// ForgetOnce removes the once key recorded by EnqueueDeliveries, so that
	// the next enqueue with it stores its deliveries again; a key that was
	// never recorded is no error. That is how a notice about a state that can
	// come back (a connection broken again) is sent once per episode.
	ForgetOnce(ctx context.Context, key string) error
	// ClaimDueDeliveries finds, for each webhook, its pending delivery with
	// the lowest Seq, and returns those whose NextAttempt is not after now,
	// at most limit of them, by NextAttempt then Seq. In the same
	// transaction it moves the NextAttempt of each returned to now+lease
	// (and returns them so), so that another dispatcher does not attempt
	// them while this one does, and a dispatcher that dies leaves them due
	// again when the lease ends.
	ClaimDueDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FindDeliveryByID returns the delivery, or not_found.
	FindDeliveryByID(ctx context.Context, id string) (Delivery, error)
	// FindDeliveries returns the webhook's deliveries, the newest (highest
	// Seq) first, at most limit when limit > 0; an empty slice when it has
	// none or the webhook does not exist.
	FindDeliveries(ctx context.Context, webhookID string, limit int) ([]Delivery, error)
	// UpdateDelivery stores the outcome of an attempt: d's Status, Attempts,
	// NextAttempt, LastAttempt, LastHTTPStatus, LastError and Completed
	// replace those of the delivery with d.ID, whose other fields stay. It
	// returns not_found when no delivery has d.ID.
	UpdateDelivery(ctx context.Context, d Delivery) error
}
