package berth_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

var auditBase = time.Date(2026, 3, 14, 15, 9, 26, 535_897_123, time.FixedZone("CET", 3600))

// auditEvent returns a denied push by ci-web, fully filled in, at auditBase
// plus n seconds.
func auditEvent(n int) berth.AuditEvent {
	return berth.AuditEvent{
		Time:         auditBase.Add(time.Duration(n) * time.Second),
		Actor:        "ci-web",
		ActorID:      "0b6f6a52-5d2e-4f0e-9a57-3d1f7c9e2a01",
		Source:       "10.0.0.7",
		Action:       berth.AuditRegistryPush,
		Target:       "team/app",
		Result:       berth.AuditDenied,
		Reason:       berth.CodeRoleMissing,
		RequestID:    "4f9c1e2d",
		CredentialID: "50000000-0000-4000-8000-000000000001",
		Connection:   "web-deploy",
		Pipeline:     "gh-main",
		Detail:       map[string]string{"missing_role": "push", "scope": "team/app"},
	}
}

// chain appends n events after anchor with ChainEvent.
func chain(anchor berth.AuditLink, n int) []berth.AuditEvent {
	var out []berth.AuditEvent
	prev := anchor
	for i := range n {
		e := berth.ChainEvent(prev, auditEvent(i))
		out = append(out, e)
		prev = e.Link()
	}
	return out
}

// referenceHash is the encoding ChainEvent's documentation states, written
// out independently, so that the documentation and the code cannot drift.
func referenceHash(e berth.AuditEvent) string {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str("berth-audit-v1")
	str(e.PrevHash)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range []string{e.Actor, e.ActorID, e.Source, string(e.Action), e.Target, string(e.Result),
		string(e.Reason), e.RequestID, e.CredentialID, e.Connection, e.Pipeline} {
		str(s)
	}
	keys := slices.Sorted(maps.Keys(e.Detail))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(e.Detail[k])
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestChainEvent(t *testing.T) {
	in := auditEvent(0)
	detail := maps.Clone(in.Detail)
	prev := berth.AuditLink{Seq: 41, Hash: strings.Repeat("ab", 32)}
	e := berth.ChainEvent(prev, in)

	if e.Seq != 42 || e.PrevHash != prev.Hash {
		t.Errorf("Seq, PrevHash = %d, %q; want 42, %q", e.Seq, e.PrevHash, prev.Hash)
	}
	if want := referenceHash(e); e.Hash != want {
		t.Errorf("Hash = %s, want %s (the documented encoding)", e.Hash, want)
	}
	if len(e.Hash) != 64 || strings.ToLower(e.Hash) != e.Hash {
		t.Errorf("Hash %q is not 64 lower-case hex digits", e.Hash)
	}
	// Time is what a store keeps: microseconds, UTC.
	if want := time.Date(2026, 3, 14, 14, 9, 26, 535_897_000, time.UTC); e.Time != want {
		t.Errorf("Time = %v, want %v", e.Time, want)
	}
	if !maps.Equal(in.Detail, detail) {
		t.Errorf("ChainEvent changed the recorder's Detail: %v", in.Detail)
	}
	if again := berth.ChainEvent(prev, in); again.Hash != e.Hash {
		t.Error("ChainEvent is not deterministic")
	}
	// Seq, PrevHash and Hash set by the recorder are overwritten.
	in.Seq, in.PrevHash, in.Hash = 7, "x", "y"
	if got := berth.ChainEvent(prev, in); got.Seq != 42 || got.Hash != e.Hash {
		t.Errorf("a recorder's Seq %d and Hash changed the result: %d %s", in.Seq, got.Seq, got.Hash)
	}
}

// TestChainEventHashCoversEveryField changes each field in turn: each change
// must change the hash, and moving bytes from one field to the next must too.
func TestChainEventHashCoversEveryField(t *testing.T) {
	prev := berth.AuditLink{Seq: 1, Hash: strings.Repeat("0", 64)}
	base := berth.ChainEvent(prev, auditEvent(0)).Hash
	changes := map[string]func(e *berth.AuditEvent, prev *berth.AuditLink){
		"Time":         func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Time = e.Time.Add(time.Microsecond) },
		"Actor":        func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Actor = "ci-wex" },
		"ActorID":      func(e *berth.AuditEvent, _ *berth.AuditLink) { e.ActorID = "" },
		"Source":       func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Source = "10.0.0.8" },
		"Action":       func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Action = berth.AuditRegistryPull },
		"Target":       func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Target = "team/ap" },
		"Result":       func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Result = berth.AuditAllowed },
		"Reason":       func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Reason = "" },
		"RequestID":    func(e *berth.AuditEvent, _ *berth.AuditLink) { e.RequestID += "0" },
		"CredentialID": func(e *berth.AuditEvent, _ *berth.AuditLink) { e.CredentialID = "" },
		"Connection":   func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Connection = "other" },
		"Pipeline":     func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Pipeline = "" },
		"Detail value": func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Detail["scope"] = "team/*" },
		"Detail key": func(e *berth.AuditEvent, _ *berth.AuditLink) {
			e.Detail = map[string]string{"missing_rolf": "push", "scope": "team/app"}
		},
		"Detail added": func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Detail["x"] = "" },
		"Detail gone":  func(e *berth.AuditEvent, _ *berth.AuditLink) { e.Detail = nil },
		"Seq":          func(_ *berth.AuditEvent, p *berth.AuditLink) { p.Seq++ },
		"PrevHash":     func(_ *berth.AuditEvent, p *berth.AuditLink) { p.Hash = strings.Repeat("1", 64) },
		"bytes moved between fields": func(e *berth.AuditEvent, _ *berth.AuditLink) {
			e.Actor, e.ActorID = "ci-web0", e.ActorID[1:]
		},
		"bytes moved between key and value": func(e *berth.AuditEvent, _ *berth.AuditLink) {
			e.Detail = map[string]string{"missing_rolep": "ush", "scope": "team/app"}
		},
	}
	for name, change := range changes {
		e, p := auditEvent(0), prev
		e.Detail = maps.Clone(e.Detail)
		change(&e, &p)
		if got := berth.ChainEvent(p, e).Hash; got == base {
			t.Errorf("changing %s left the hash as it was", name)
		}
	}
	// Both nil and empty Detail are no detail.
	e := auditEvent(0)
	e.Detail = nil
	nilHash := berth.ChainEvent(prev, e).Hash
	e.Detail = map[string]string{}
	if got := berth.ChainEvent(prev, e); got.Hash != nilHash || got.Detail != nil {
		t.Errorf("an empty Detail hashes unlike nil, or is kept: %v", got.Detail)
	}
}

// credentialValues returns a value of every kind of credential berth
// issues, by kind.
func credentialValues(t *testing.T) map[string]string {
	t.Helper()
	secret, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refresh, err := berth.NewRefreshTokenValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	scopes := []berth.ResourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}
	_, pat, err := berth.NewPAT(rand.Reader, "p", scopes, "", auditBase, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"client secret": secret.Reveal(), "refresh token": refresh.Reveal(), "personal access token": pat}
	// Sessions, device codes and webhook secrets share the shape: a prefix
	// and base62 characters.
	for kind, prefix := range map[string]string{"session": berth.SessionValuePrefix, "device code": berth.DeviceCodePrefix, "webhook secret": berth.WebhookSecretPrefix} {
		values[kind] = prefix + "Zq3x9Lm2Pk8Rt4Vw7Yb1Nc6Hd5Jf0Gs"
	}
	return values
}

func TestChainEventNeverKeepsACredential(t *testing.T) {
	values := credentialValues(t)
	secret := values["client secret"]
	const jwt = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJjaS13ZWIifQ.c2lnbmF0dXJlLWJ5dGVz"
	credentials := map[string]string{
		"access token (JWT)": jwt,
		"secret in a text":   "Basic user:" + secret + " sent",
		"JWT in a text":      "Bearer " + jwt,
	}
	for kind, v := range values {
		credentials[kind] = v
	}
	for name, value := range credentials {
		e := auditEvent(0)
		e.Actor, e.Target, e.Source = value, value, value
		e.Detail = map[string]string{"password": value, "note": "fine"}
		got := berth.ChainEvent(berth.AuditLink{}, e)
		b, _ := json.Marshal(got)
		if strings.Contains(string(b), value) || strings.Contains(string(b), secret[:20]) || strings.Contains(string(b), jwt[:30]) {
			t.Errorf("%s: the chained event holds it: %s", name, b)
		}
		if got.Actor != "[redacted]" || got.Detail["password"] != "[redacted]" || got.Detail["note"] != "fine" {
			t.Errorf("%s: Actor %q, Detail %v; want [redacted] where the credential was, the rest kept", name, got.Actor, got.Detail)
		}
	}

	// What messages quote of a secret (its hint) is not a credential, and
	// ordinary values that merely resemble one survive.
	keep := []string{
		"secret '" + secret[:berth.SecretHintLength] + "…' of principal ci-web expired",
		"brt_", "team/brr_x", "eyJ", "eyJhbGciOiJFUzI1NiJ9", "a.b.c", "repository:team/app:pull,push",
	}
	for _, v := range keep {
		e := auditEvent(0)
		e.Detail = map[string]string{"message": v}
		if got := berth.ChainEvent(berth.AuditLink{}, e); got.Detail["message"] != v {
			t.Errorf("%q became %q", v, got.Detail["message"])
		}
	}
}

func TestChainEventBoundsText(t *testing.T) {
	e := auditEvent(0)
	e.Target = strings.Repeat("é", 1000) // 2000 bytes
	e.Actor = "bad\xffutf8"
	e.Detail = map[string]string{"": "dropped"}
	for i := range 40 {
		e.Detail[string(rune('A'+i))] = "v"
	}
	got := berth.ChainEvent(berth.AuditLink{}, e)
	if len(got.Target) > 1024 || !strings.HasSuffix(got.Target, "…") || !strings.HasPrefix(got.Target, "éé") {
		t.Errorf("Target of 2000 bytes became %d bytes: %q…", len(got.Target), got.Target[:10])
	}
	if got.Actor != "bad\uFFFDutf8" {
		t.Errorf("Actor = %q, want the invalid byte replaced", got.Actor)
	}
	if _, ok := got.Detail[""]; ok {
		t.Error("an empty detail key was kept")
	}
	if len(got.Detail) != 33 || got.Detail["detail_truncated"] != "8" || got.Detail["A"] != "v" {
		t.Errorf("Detail of 40 keys kept %d, truncated %q", len(got.Detail), got.Detail["detail_truncated"])
	}
	// What was cut is what is hashed: a store that keeps it verifies.
	if err := berth.VerifyChain(berth.AuditLink{}, got.Link(), []berth.AuditEvent{got}); err != nil {
		t.Errorf("a normalized event does not verify: %v", err)
	}
}

func wantTampered(t *testing.T, what string, err error, seq int64) {
	t.Helper()
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodeAuditTampered {
		t.Errorf("%s: got %v, want audit_tampered", what, err)
		return
	}
	if got, _ := e.Detail["seq"].(int64); got != seq {
		t.Errorf("%s: broken seq %v, want %d (%s)", what, e.Detail["seq"], seq, e.Message)
	}
	if e.Hint == "" {
		t.Errorf("%s: no hint", what)
	}
}

func TestVerifyChain(t *testing.T) {
	anchor := berth.AuditLink{Seq: 100, Hash: strings.Repeat("c", 64)}
	events := chain(anchor, 6) // seq 101..106
	head := events[5].Link()

	if err := berth.VerifyChain(anchor, head, events); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	if err := berth.VerifyChain(berth.AuditLink{}, berth.AuditLink{}, nil); err != nil {
		t.Errorf("empty log: %v", err)
	}
	if err := berth.VerifyChain(head, head, nil); err != nil {
		t.Errorf("log pruned up to its head: %v", err)
	}
	fromStart := chain(berth.AuditLink{}, 3)
	if err := berth.VerifyChain(berth.AuditLink{}, fromStart[2].Link(), fromStart); err != nil {
		t.Errorf("chain from the start: %v", err)
	}

	edit := func(i int, f func(e *berth.AuditEvent)) []berth.AuditEvent {
		out := slices.Clone(events)
		out[i].Detail = maps.Clone(out[i].Detail)
		f(&out[i])
		return out
	}
	without := func(i ...int) []berth.AuditEvent {
		var out []berth.AuditEvent
		for j, e := range events {
			if !slices.Contains(i, j) {
				out = append(out, e)
			}
		}
		return out
	}
	// rechained replaces event i by an edited one with a correct hash of its
	// own, as someone who knows the encoding would.
	rechained := func(i int) []berth.AuditEvent {
		out := slices.Clone(events)
		e := events[i]
		e.Result = berth.AuditAllowed
		prev := anchor
		if i > 0 {
			prev = events[i-1].Link()
		}
		out[i] = berth.ChainEvent(prev, e)
		return out
	}
	swapped := slices.Clone(events)
	swapped[2], swapped[3] = swapped[3], swapped[2]

	tests := []struct {
		name   string
		anchor berth.AuditLink
		head   berth.AuditLink
		events []berth.AuditEvent
		seq    int64
	}{
		{"result edited", anchor, head, edit(2, func(e *berth.AuditEvent) { e.Result = berth.AuditAllowed }), 103},
		{"time edited", anchor, head, edit(0, func(e *berth.AuditEvent) { e.Time = e.Time.Add(-time.Hour) }), 101},
		{"detail edited", anchor, head, edit(5, func(e *berth.AuditEvent) { e.Detail["scope"] = "team/*" }), 106},
		{"detail removed", anchor, head, edit(4, func(e *berth.AuditEvent) { e.Detail = nil }), 105},
		{"hash edited", anchor, head, edit(3, func(e *berth.AuditEvent) { e.Hash = strings.Repeat("0", 64) }), 104},
		{"edited and rehashed", anchor, head, rechained(2), 104},
		{"middle deleted", anchor, head, without(2), 103},
		{"two deleted", anchor, head, without(1, 2), 102},
		{"first after the anchor deleted", anchor, head, without(0), 101},
		{"tail deleted", anchor, head, without(5), 106},
		{"tail of two deleted", anchor, head, without(4, 5), 105},
		{"all deleted", anchor, head, nil, 101},
		{"head rolled back with the tail", anchor, events[4].Link(), events, 106},
		{"head hash replaced", anchor, berth.AuditLink{Seq: 106, Hash: strings.Repeat("d", 64)}, events, 106},
		{"out of order", anchor, head, swapped, 103},
		{"repeated", anchor, head, slices.Insert(slices.Clone(events), 3, events[2]), 103},
		{"anchor replaced", berth.AuditLink{Seq: 100, Hash: strings.Repeat("e", 64)}, head, events, 101},
		{"pruned without moving the anchor", berth.AuditLink{}, head, events, 1},
	}
	for _, tt := range tests {
		wantTampered(t, tt.name, berth.VerifyChain(tt.anchor, tt.head, tt.events), tt.seq)
	}
}

func TestAuditVerifierCounts(t *testing.T) {
	events := chain(berth.AuditLink{}, 4)
	var v berth.AuditVerifier
	if err := v.Begin(berth.AuditLink{}, events[3].Link()); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := v.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.End(); err != nil {
		t.Fatal(err)
	}
	if v.Events() != 4 || v.Head() != events[3].Link() || v.Anchor() != (berth.AuditLink{}) {
		t.Errorf("Events %d, Head %v, Anchor %v", v.Events(), v.Head(), v.Anchor())
	}
}

func TestNewAuditEvent(t *testing.T) {
	ctx := berth.WithRequestID(context.Background(), "req-1")
	ctx = berth.WithSourceAddress(ctx, "192.0.2.4")
	p := &berth.Principal{ID: "0b6f6a52-5d2e-4f0e-9a57-3d1f7c9e2a01", Name: "ci-web"}
	ctx = berth.WithCaller(ctx, &berth.Caller{Actor: berth.Actor{ID: p.ID, Name: p.Name}, Principal: p, CredentialID: "sec-1"})

	e := berth.NewAuditEvent(ctx, berth.AuditRegistryPull, "team/app", nil)
	want := berth.AuditEvent{Actor: "ci-web", ActorID: p.ID, Source: "192.0.2.4", Action: berth.AuditRegistryPull,
		Target: "team/app", Result: berth.AuditAllowed, RequestID: "req-1", CredentialID: "sec-1"}
	if e.Detail != nil || !equalEvents(e, want) {
		t.Errorf("allowed: got %+v, want %+v", e, want)
	}

	denial := berth.Errorf(berth.CodeRoleMissing, "principal ci-web may not push").WithDetail("missing_role", "push").WithDetail("n", 3)
	e = berth.NewAuditEvent(ctx, berth.AuditRegistryPush, "team/app", denial)
	if e.Result != berth.AuditDenied || e.Reason != berth.CodeRoleMissing {
		t.Errorf("denied: Result %q, Reason %q", e.Result, e.Reason)
	}
	if e.Detail["missing_role"] != "push" || e.Detail["n"] != "3" || e.Detail["message"] != denial.Message {
		t.Errorf("denied: Detail = %v, want the error's detail and message", e.Detail)
	}

	// An error that is not an *Error is internal; its text is not recorded.
	e = berth.NewAuditEvent(context.Background(), berth.AuditAuthBasic, "", errors.New("disk full at /var/x"))
	if e.Result != berth.AuditDenied || e.Reason != berth.CodeInternal || e.Detail != nil || e.Actor != "" || e.RequestID != "" {
		t.Errorf("internal: got %+v", e)
	}
}

func equalEvents(a, b berth.AuditEvent) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Actor == b.Actor && a.ActorID == b.ActorID && a.Source == b.Source &&
		a.Action == b.Action && a.Target == b.Target && a.Result == b.Result && a.Reason == b.Reason &&
		a.RequestID == b.RequestID && a.CredentialID == b.CredentialID && a.Connection == b.Connection &&
		a.Pipeline == b.Pipeline && maps.Equal(a.Detail, b.Detail) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func TestAuditClientID(t *testing.T) {
	secret, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"C0000000-0000-4000-8000-000000000001": "c0000000-0000-4000-8000-000000000001",
		"ci-web":                               "ci-web",
		secret.Reveal():                        "",
		"Ci Web":                               "",
		"":                                     "",
	}
	for in, want := range tests {
		if got := berth.AuditClientID(in); got != want {
			t.Errorf("AuditClientID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuditRegistryAction(t *testing.T) {
	tests := map[string]berth.AuditAction{
		"":       berth.AuditRegistryVersion,
		"pull":   berth.AuditRegistryPull,
		"push":   berth.AuditRegistryPush,
		"delete": berth.AuditRegistryDelete,
		"*":      berth.AuditRegistryCatalog,
		"other":  "registry.other",
	}
	for in, want := range tests {
		if got := berth.AuditRegistryAction(in); got != want {
			t.Errorf("AuditRegistryAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAuditResult(t *testing.T) {
	for _, s := range []string{"allowed", "denied"} {
		if r, err := berth.ParseAuditResult(s); err != nil || string(r) != s {
			t.Errorf("ParseAuditResult(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Allowed", "deny"} {
		if _, err := berth.ParseAuditResult(s); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParseAuditResult(%q): %v, want invalid", s, err)
		}
	}
}

func TestAuditEventJSON(t *testing.T) {
	e := berth.ChainEvent(berth.AuditLink{}, auditEvent(0))
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "time", "actor", "actor_id", "source", "action", "target", "result", "reason",
		"request_id", "credential_id", "connection", "pipeline", "detail", "prev_hash", "hash"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if len(m) != 16 {
		t.Errorf("JSON has %d fields, want 16: %s", len(m), b)
	}
	if m["time"] != "2026-03-14T14:09:26.535897Z" {
		t.Errorf("time = %v, want RFC 3339 in UTC", m["time"])
	}
	var back berth.AuditEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// An exported event verifies on its own.
	if err := berth.VerifyChain(berth.AuditLink{}, back.Link(), []berth.AuditEvent{back}); err != nil {
		t.Errorf("an event read back from JSON does not verify: %v", err)
	}
}

func TestAuditEventBinary(t *testing.T) {
	full := berth.ChainEvent(berth.AuditLink{Seq: 9, Hash: strings.Repeat("f", 64)}, auditEvent(3))
	bare := berth.ChainEvent(berth.AuditLink{}, berth.AuditEvent{Time: auditBase, Action: berth.AuditLogDropped})
	for _, e := range []berth.AuditEvent{full, bare} {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back berth.AuditEvent
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary(MarshalBinary(%d)): %v", e.Seq, err)
		}
		if !equalEvents(back, e) || (back.Detail == nil) != (e.Detail == nil) {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
		}
		// Appending extends what is there.
		prefix := []byte("xyz")
		if ab, _ := e.AppendBinary(prefix); string(ab[:3]) != "xyz" || string(ab[3:]) != string(b) {
			t.Error("AppendBinary does not append MarshalBinary's bytes")
		}
		// The form is the hashed encoding followed by the hash.
		sum := sha256.Sum256(b[:len(b)-65])
		if hex.EncodeToString(sum[:]) != e.Hash {
			t.Errorf("the binary form of %d is not its hashed encoding followed by str(Hash)", e.Seq)
		}
	}

	b, _ := full.MarshalBinary()
	var e berth.AuditEvent
	for n := range len(b) {
		if err := e.UnmarshalBinary(b[:n]); err == nil {
			t.Fatalf("UnmarshalBinary of the first %d of %d bytes succeeded", n, len(b))
		}
	}
	if err := e.UnmarshalBinary(append(slices.Clone(b), 0)); err == nil {
		t.Error("UnmarshalBinary with a byte left over succeeded")
	}
	other := slices.Clone(b)
	other[len("berth-audit-v1")] = '2' // the version's last byte
	if err := e.UnmarshalBinary(other); err == nil {
		t.Error("UnmarshalBinary of another version succeeded")
	}
	if e.Seq != 0 || e.Hash != "" {
		t.Errorf("a failed UnmarshalBinary changed the event: %+v", e)
	}
}

func TestAuditFilterMatch(t *testing.T) {
	e := berth.ChainEvent(berth.AuditLink{Seq: 41}, auditEvent(0)) // seq 42, ci-web, registry.push team/app, denied role_missing
	at := e.Time
	tests := []struct {
		f    berth.AuditFilter
		want bool
	}{
		{berth.AuditFilter{}, true},
		{berth.AuditFilter{Since: at}, true},
		{berth.AuditFilter{Since: at.Add(time.Microsecond)}, false},
		{berth.AuditFilter{Until: at}, false},
		{berth.AuditFilter{Until: at.Add(time.Microsecond)}, true},
		{berth.AuditFilter{Principal: "ci-web"}, true},
		{berth.AuditFilter{Principal: e.ActorID}, true},
		{berth.AuditFilter{Principal: "ci"}, false},
		{berth.AuditFilter{Repository: "team/app"}, true},
		{berth.AuditFilter{Repository: "team/*"}, true},
		{berth.AuditFilter{Repository: "team/app/*"}, false},
		{berth.AuditFilter{Repository: "tea/*"}, false},
		{berth.AuditFilter{Repository: "team"}, false},
		{berth.AuditFilter{Action: berth.AuditRegistryPush}, true},
		{berth.AuditFilter{Action: berth.AuditRegistryPull}, false},
		{berth.AuditFilter{Result: berth.AuditDenied}, true},
		{berth.AuditFilter{Result: berth.AuditAllowed}, false},
		{berth.AuditFilter{Code: berth.CodeRoleMissing}, true},
		{berth.AuditFilter{Code: berth.CodeSecretExpired}, false},
		{berth.AuditFilter{After: 41}, true},
		{berth.AuditFilter{After: 42}, false},
		{berth.AuditFilter{Before: 43}, true},
		{berth.AuditFilter{Before: 42}, false},
		{berth.AuditFilter{Limit: 1, Last: true}, true},
	}
	for _, tt := range tests {
		if got := tt.f.Match(e); got != tt.want {
			t.Errorf("%+v.Match = %v, want %v", tt.f, got, tt.want)
		}
	}
	under := auditEvent(0)
	under.Target = "team/app/sub"
	if !(berth.AuditFilter{Repository: "team/app/*"}).Match(under) || !(berth.AuditFilter{Repository: "team/*"}).Match(under) {
		t.Error("a namespace filter does not match a repository two levels under it")
	}
}

// RedactCredentials keeps the text around a credential and every hint.
func TestRedactCredentials(t *testing.T) {
	secret, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const jwt = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJjaS13ZWIifQ.c2lnbmF0dXJlLWJ5dGVz"
	for in, want := range map[string]string{
		`repository name "` + secret.Reveal() + `" is invalid`: `repository name "brt_[redacted]" is invalid`,
		"token " + jwt + " refused":                            "token [redacted] refused",
		"secret '" + secret.Hint() + "…' expired":              "secret '" + secret.Hint() + "…' expired",
		"eyJeyJeyJ." + jwt:                                     "[redacted]",
		"plain team/app":                                       "plain team/app",
	} {
		if got := berth.RedactCredentials(in); got != want {
			t.Errorf("RedactCredentials(%.30q…) = %q, want %q", in, got, want)
		}
	}
	if e := berth.Errorf(berth.CodeNameInvalid, "name %q", secret.Reveal()); strings.Contains(e.Error(), secret.Reveal()) {
		t.Errorf("Errorf kept the secret: %s", e)
	}
}

// Every kind of credential berth issues is redacted, refused in a URL and
// never repeated by a message, not only client secrets: a personal access
// token pasted where its id belongs reached the request log.
func TestEveryCredentialKindIsRedacted(t *testing.T) {
	for kind, v := range credentialValues(t) {
		hint := v[:berth.SecretHintLength]
		if got := berth.RedactCredential("/api/v1/tokens/" + v); got != "[redacted]" {
			t.Errorf("%s: RedactCredential kept it", kind)
		}
		if got := berth.RedactCredentials("x " + v + " y"); got != "x "+v[:4]+"[redacted] y" {
			t.Errorf("%s: RedactCredentials = %q", kind, got)
		}
		if got := berth.RedactCredentials("hint " + hint + "…"); got != "hint "+hint+"…" {
			t.Errorf("%s: RedactCredentials redacted the hint: %q", kind, got)
		}
		if berth.QueryCredential(url.Values{"q": {v}}) == "" {
			t.Errorf("%s: QueryCredential let it through in the URL", kind)
		}
		if e := berth.Errorf(berth.CodeInvalid, "bad %s", v); strings.Contains(e.Error(), v) {
			t.Errorf("%s: Errorf kept it: %s", kind, e)
		}
		if !berth.LooksLikeCredential(v) {
			t.Errorf("%s: LooksLikeCredential is false", kind)
		}
		for _, parse := range []func(string) (string, error){berth.ParseClientID, berth.ParseSecretID, berth.ParsePATID} {
			if _, err := parse(v); berth.ErrorCode(err) != berth.CodeInvalid || strings.Contains(err.Error(), v[4:]) {
				t.Errorf("%s: parsing it as an id: %v", kind, err)
			}
		}
	}
}
