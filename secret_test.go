package berth_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// fixedSecret is a well-formed secret whose checksum was computed outside Go
// (Python's zlib.crc32): a change to the format breaks this test, as it would
// break every scanner that knows the format.
const fixedSecret = "brt_0123456789abcdefghijklmnopqrstuv0rM6B1"

func randReader(t *testing.T) io.Reader { t.Helper(); return rand.Reader }

// repeatReader yields pattern over and over.
type repeatReader struct {
	pattern []byte
	i       int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.pattern[r.i%len(r.pattern)]
		r.i++
	}
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy pool on fire") }

var secretEpoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testHasher(t *testing.T) *berth.SecretHasher {
	t.Helper()
	h, err := berth.NewSecretHasher(bytes.Repeat([]byte{7}, berth.SecretPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSecretFormatKnownValues(t *testing.T) {
	if err := berth.CheckSecretFormat(fixedSecret); err != nil {
		t.Errorf("CheckSecretFormat(fixedSecret): %v", err)
	}
	if err := berth.CheckSecretFormat("brt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA4c0DCo"); err != nil {
		t.Errorf("CheckSecretFormat of a second known value: %v", err)
	}
	for _, tt := range []struct {
		name string
		rand io.Reader
		want string // checksums computed with Python's zlib.crc32
	}{
		// Bytes 0..31 map to the first 32 characters of the alphabet.
		{"counting", &countingReader{}, "brt_0123456789ABCDEFGHIJKLMNOPQRSTUV0CNEPb"},
		// 255 is rejected (>= 248); 61 is 'z'.
		{"rejection", &repeatReader{pattern: []byte{255, 61, 250}}, "brt_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz2w91cg"},
		// 123 and 247 are 61 mod 62: kept, and 'z' too.
		{"modulo", &repeatReader{pattern: []byte{123, 247, 248}}, "brt_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz2w91cg"},
	} {
		v, err := berth.NewSecretValue(tt.rand)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := v.Reveal(); got != tt.want {
			t.Errorf("%s: NewSecretValue = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestSecretEntropy(t *testing.T) {
	body := berth.SecretLength - len(berth.SecretPrefix) - 6
	if bits := float64(body) * math.Log2(62); body < 32 || bits < 190 {
		t.Errorf("the body has %d characters, %.1f bits; want at least 32 characters and 190 bits", body, bits)
	}
}

func TestNewSecretValueIsUniform(t *testing.T) {
	pattern := regexp.MustCompile("^" + berth.SecretPattern + "$")
	const n = 5000
	counts := map[byte]int{}
	seen := map[string]bool{}
	for range n {
		v, err := berth.NewSecretValue(randReader(t))
		if err != nil {
			t.Fatal(err)
		}
		s := v.Reveal()
		if err := berth.CheckSecretFormat(s); err != nil {
			t.Fatalf("a new secret fails CheckSecretFormat: %v", err)
		}
		if !pattern.MatchString(s) {
			t.Fatalf("a new secret does not match SecretPattern")
		}
		if seen[s] {
			t.Fatal("NewSecretValue repeated a value")
		}
		seen[s] = true
		for i := len(berth.SecretPrefix); i < berth.SecretLength-6; i++ {
			counts[s[i]]++
		}
	}
	// Each of the 62 characters is expected 5000×32/62 ≈ 2581 times (σ ≈ 50);
	// plain b%62 without rejection would give '0'..'7' 25% more.
	want := float64(n*32) / 62
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for c, got := range counts {
		if math.Abs(float64(got)-want) > 0.12*want {
			t.Errorf("character %q appeared %d times, want about %.0f", c, got, want)
		}
	}
}

func TestNewSecretValueBadSource(t *testing.T) {
	if _, err := berth.NewSecretValue(failingReader{}); err == nil || berth.AsError(err) != nil {
		t.Errorf("a failing source: %v, want an internal error", err)
	}
	if _, err := berth.NewSecretValue(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("an exhausted source gave a secret")
	}
	// A source whose every byte is rejected must fail, not spin.
	done := make(chan error, 1)
	go func() {
		_, err := berth.NewSecretValue(&repeatReader{pattern: []byte{0xff}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a constant 0xff source gave a secret")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NewSecretValue spins on a source of rejected bytes")
	}
}

func TestCheckSecretFormat(t *testing.T) {
	body := fixedSecret[len(berth.SecretPrefix):]
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"prefix only", "brt_"},
		{"no prefix", body},
		{"upper-case prefix", "BRT_" + body},
		{"another prefix", "ghp_" + body},
		{"one short", fixedSecret[:len(fixedSecret)-1]},
		{"one long", fixedSecret + "0"},
		{"checksum missing", fixedSecret[:len(fixedSecret)-6]},
		{"dash in body", fixedSecret[:10] + "-" + fixedSecret[11:]},
		{"space at the end", fixedSecret[:len(fixedSecret)-1] + " "},
		{"newline at the end", fixedSecret + "\n"},
		{"a uuid", "123e4567-e89b-12d3-a456-426614174000"},
	}
	for _, tt := range tests {
		err := berth.CheckSecretFormat(tt.in)
		if got := berth.ErrorCode(err); got != berth.CodeSecretInvalid {
			t.Errorf("%s: code %q, want secret_invalid", tt.name, got)
		}
	}

	// CRC-32 detects every single-character change and every swap of two
	// neighbours: a scanner reports no mistyped value as a secret.
	alphabet := "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for i := len(berth.SecretPrefix); i < len(fixedSecret); i++ {
		for j := range len(alphabet) {
			c := alphabet[j]
			if c == fixedSecret[i] {
				continue
			}
			typo := fixedSecret[:i] + string(c) + fixedSecret[i+1:]
			if err := berth.CheckSecretFormat(typo); !berth.IsCode(err, berth.CodeSecretInvalid) {
				t.Fatalf("changing position %d to %q passes: %v", i, c, err)
			}
		}
		if i+1 < len(fixedSecret) && fixedSecret[i] != fixedSecret[i+1] {
			swapped := fixedSecret[:i] + fixedSecret[i+1:i+2] + fixedSecret[i:i+1] + fixedSecret[i+2:]
			if err := berth.CheckSecretFormat(swapped); !berth.IsCode(err, berth.CodeSecretInvalid) {
				t.Fatalf("swapping positions %d and %d passes: %v", i, i+1, err)
			}
		}
	}
	// The message never quotes the value.
	typo := fixedSecret[:len(fixedSecret)-1] + "x"
	if err := berth.CheckSecretFormat(typo); strings.Contains(err.Error(), body[:12]) {
		t.Errorf("the error repeats the secret: %v", err)
	}
}

func TestSecretPattern(t *testing.T) {
	re := regexp.MustCompile(berth.SecretPattern)
	text := "export TOKEN=" + fixedSecret + "\npassword: '" + fixedSecret + "' " +
		"brt_" + strings.Repeat("a", 39) + " x" + fixedSecret + " " + fixedSecret + "a"
	got := re.FindAllString(text, -1)
	if len(got) != 2 || got[0] != fixedSecret || got[1] != fixedSecret {
		t.Errorf("SecretPattern found %q, want fixedSecret twice", got)
	}
}

// secretLeaks returns the forms in which a secret value or its hash could leak.
func secretLeaks(value string, hash []byte) []string {
	var l []string
	if value != "" {
		l = append(l, value[len(berth.SecretPrefix)+4:]) // beyond the hint
	}
	if len(hash) > 0 {
		l = append(l, hex.EncodeToString(hash)[:16], fmt.Sprint([]byte(hash))[:20], fmt.Sprintf("%X", []byte(hash))[:16])
	}
	return l
}

func wantNoLeak(t *testing.T, what, out string, leaks []string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(out, l) {
			t.Errorf("%s leaks a credential: %s", what, out)
			return
		}
	}
}

func TestSecretValueRedacts(t *testing.T) {
	v, err := berth.NewSecretValue(randReader(t))
	if err != nil {
		t.Fatal(err)
	}
	value := v.Reveal()
	if len(value) != berth.SecretLength || berth.CheckSecretFormat(value) != nil {
		t.Fatalf("Reveal returned a malformed value")
	}
	if v.Hint() != value[:berth.SecretHintLength] || v.String() != value[:berth.SecretHintLength]+"…" {
		t.Errorf("Hint %q, String %q", v.Hint(), v.String())
	}
	leaks := secretLeaks(value, nil)

	type exported struct{ Value berth.SecretValue }
	type unexported struct{ value berth.SecretValue }
	for _, f := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%#v", "%+v", "%10.50s", "%T %v"} {
		for _, arg := range []any{v, &v, exported{v}, &exported{v}, unexported{v}, &unexported{v}, []berth.SecretValue{v}, map[string]berth.SecretValue{"k": v}} {
			wantNoLeak(t, fmt.Sprintf("fmt %s of %T", f, arg), fmt.Sprintf(f, arg), leaks)
		}
	}
	wantNoLeak(t, "Sprint", fmt.Sprint(v, exported{v}), leaks)
	wantNoLeak(t, "Sprintln", fmt.Sprintln(v), leaks)
	wantNoLeak(t, "an error", fmt.Errorf("auth: %w: %v", errors.New("x"), v).Error(), leaks)
	// Every verb shows the same redacted form, not an address or a hex dump.
	for _, f := range []string{"%v", "%s", "%d", "%x", "%X", "%+v", "%10s"} {
		if got := fmt.Sprintf(f, v); got != v.String() {
			t.Errorf("fmt %s = %q, want the hint %q", f, got, v.String())
		}
	}
	if got := fmt.Sprintf("%q", v); got != `"`+v.String()+`"` {
		t.Errorf("fmt %%q = %s, want the quoted hint", got)
	}

	for _, arg := range []any{v, exported{v}, map[string]any{"v": v}} {
		b, err := json.Marshal(arg)
		if err != nil {
			t.Fatal(err)
		}
		wantNoLeak(t, fmt.Sprintf("json of %T", arg), string(b), leaks)
	}
	if b, _ := json.Marshal(v); string(b) != `"`+v.String()+`"` {
		t.Errorf("json.Marshal = %s, want the hint", b)
	}
	b, err := v.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	wantNoLeak(t, "MarshalText", string(b), leaks)

	for _, h := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("secret added", "value", v, "struct", exported{v}, slog.Group("g", "value", v))
		log.Info(fmt.Sprint(v))
		wantNoLeak(t, "slog", buf.String(), leaks)
	}

	var zero berth.SecretValue
	if !zero.IsZero() || zero.Reveal() != "" || zero.String() != "" || v.IsZero() {
		t.Errorf("zero value: IsZero %v, Reveal %q, String %q", zero.IsZero(), zero.Reveal(), zero.String())
	}
}

func TestSecretHashRedacts(t *testing.T) {
	h := testHasher(t)
	hash := h.Hash(fixedSecret)
	s := berth.Secret{ID: "00000000-0000-4000-8000-000000000001", Hint: fixedSecret[:8], Hash: hash, Expires: secretEpoch}
	leaks := secretLeaks("", hash)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, arg := range []any{hash, s, &s, []berth.Secret{s}} {
			wantNoLeak(t, fmt.Sprintf("fmt %s of %T", f, arg), fmt.Sprintf(f, arg), leaks)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	wantNoLeak(t, "json of a Secret", string(b), leaks)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"id", "hint", "expires_at", "created_at"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("json of a Secret lacks %q: %s", key, b)
		}
	}
	for key := range fields {
		if strings.Contains(key, "hash") {
			t.Errorf("json of a Secret holds %q: %s", key, b)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s, "hash", hash)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s, "hash", hash)
	wantNoLeak(t, "slog", buf.String(), leaks)
}

func TestSecretHasher(t *testing.T) {
	if _, err := berth.NewSecretHasher(make([]byte, berth.SecretPepperSize-1)); !berth.IsCode(err, berth.CodeInvalid) {
		t.Errorf("a short pepper: %v, want invalid", err)
	}
	if _, err := berth.NewSecretHasher(nil); !berth.IsCode(err, berth.CodeInvalid) {
		t.Errorf("no pepper: %v, want invalid", err)
	}
	pepper := bytes.Repeat([]byte{7}, berth.SecretPepperSize)
	h, err := berth.NewSecretHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	// HMAC-SHA256 keyed with the pepper, computed independently.
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(fixedSecret))
	want := m.Sum(nil)
	if got := h.Hash(fixedSecret); !bytes.Equal(got, want) {
		t.Errorf("Hash = %x, want HMAC-SHA256 %x", []byte(got), want)
	}
	// The hasher keeps its own copy of the pepper.
	pepper[0] = 8
	if got := h.Hash(fixedSecret); !bytes.Equal(got, want) {
		t.Error("changing the caller's pepper slice changed the hasher")
	}
	other, err := berth.NewSecretHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Hash(fixedSecret), want) {
		t.Error("two peppers give the same hash")
	}
	if !h.Match(fixedSecret, want) {
		t.Error("Match of the value and its hash is false")
	}
	for _, tt := range []struct {
		name  string
		value string
		hash  []byte
	}{
		{"another value", fixedSecret[:len(fixedSecret)-1] + "2", want},
		{"another pepper", fixedSecret, other.Hash(fixedSecret)},
		{"truncated hash", fixedSecret, want[:16]},
		{"empty hash", fixedSecret, nil},
	} {
		if h.Match(tt.value, tt.hash) {
			t.Errorf("Match with %s is true", tt.name)
		}
	}
}

func TestNewSecret(t *testing.T) {
	h := testHasher(t)
	s, v, err := berth.NewSecret(&countingReader{}, h, "p-1", secretEpoch, 90*24*time.Hour, "deploys web")
	if err != nil {
		t.Fatal(err)
	}
	// Bytes 0..15 make the id; the value's body starts at byte 16.
	if s.ID != "00010203-0405-4607-8809-0a0b0c0d0e0f" {
		t.Errorf("ID = %s", s.ID)
	}
	value := v.Reveal()
	if !strings.HasPrefix(value, "brt_GHIJ") || berth.CheckSecretFormat(value) != nil {
		t.Errorf("value %s… is not the secret made from bytes 16 on", value[:8])
	}
	if s.PrincipalID != "p-1" || s.Hint != value[:8] || s.Hint != v.Hint() || s.Description != "deploys web" {
		t.Errorf("NewSecret = %+v", s)
	}
	if !h.Match(value, s.Hash) {
		t.Error("the hash is not the value's")
	}
	if !s.Created.Equal(secretEpoch) || !s.Expires.Equal(secretEpoch.Add(90*24*time.Hour)) {
		t.Errorf("Created %v, Expires %v", s.Created, s.Expires)
	}
	if s.LastUsed != nil || s.Revoked != nil || s.State(secretEpoch) != berth.SecretActive {
		t.Errorf("a new secret: LastUsed %v, Revoked %v, State %s", s.LastUsed, s.Revoked, s.State(secretEpoch))
	}

	for _, tt := range []struct {
		name        string
		lifetime    time.Duration
		description string
	}{
		{"zero lifetime", 0, ""},
		{"negative lifetime", -time.Hour, ""},
		{"long description", time.Hour, strings.Repeat("x", berth.MaxSecretDescriptionLength+1)},
		{"newline in description", time.Hour, "one\ntwo"},
		{"escape in description", time.Hour, "red \x1b[31m"},
		{"invalid UTF-8", time.Hour, "caf\xe9"},
	} {
		_, _, err := berth.NewSecret(randReader(t), h, "p-1", secretEpoch, tt.lifetime, tt.description)
		if !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%s: %v, want invalid", tt.name, err)
		}
	}
	if _, _, err := berth.NewSecret(randReader(t), h, "p-1", secretEpoch, time.Hour, strings.Repeat("é", berth.MaxSecretDescriptionLength/2)); err != nil {
		t.Errorf("a description of exactly the limit: %v", err)
	}
	if _, _, err := berth.NewSecret(failingReader{}, h, "p-1", secretEpoch, time.Hour, ""); err == nil || berth.AsError(err) != nil {
		t.Errorf("a failing random source: %v, want an internal error", err)
	}
}

func TestParseLifetime(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		max  time.Duration
		want time.Duration // 0 when invalid
	}{
		{"", 0, 90 * day},
		{"", 30 * day, 30 * day},
		{"30s", 0, 30 * time.Second},
		{"12h", 0, 12 * time.Hour},
		{"90d", 0, 90 * day},
		{"1d12h", 0, 36 * time.Hour},
		{"1h30m", 0, 90 * time.Minute},
		{"1.5h", 0, 90 * time.Minute},
		{"365d", 0, 365 * day},
		{"364d23h59m59s", 0, 365*day - time.Second},
		{"8760h", 0, 365 * day},
		{"007d", 0, 7 * day},
		{"30d", 30 * day, 30 * day},
		{"1d12h", 36 * time.Hour, 36 * time.Hour},

		{"400d", 0, 0},
		{"366d", 0, 0},
		{"365d1s", 0, 0},
		{"8761h", 0, 0},
		{"31d", 30 * day, 0},
		{"1d12h1ns", 36 * time.Hour, 0},
		{"2d", 36 * time.Hour, 0},
		{"99999999999999999999d", 0, 0},
		{"1d2562047h", 0, 0},
		{"0s", 0, 0},
		{"0d", 0, 0},
		{"0", 0, 0},
		{"-1d", 0, 0},
		{"-30s", 0, 0},
		{"1d-1h", 0, 0},
		{"+1h", 0, 0},
		{"d", 0, 0},
		{"1.5d", 0, 0},
		{"1h2d", 0, 0},
		{"1d2d", 0, 0},
		{"30", 0, 0},
		{"ninety days", 0, 0},
		{" 90d", 0, 0},
		{"90D", 0, 0},
		{"1w", 0, 0},
	}
	for _, tt := range tests {
		got, err := berth.ParseLifetime(tt.in, tt.max)
		if tt.want == 0 {
			if !berth.IsCode(err, berth.CodeInvalid) || got != 0 {
				t.Errorf("ParseLifetime(%q, %v) = %v, %v; want invalid", tt.in, tt.max, got, err)
			} else if berth.AsError(err).Hint == "" {
				t.Errorf("ParseLifetime(%q): no hint", tt.in)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLifetime(%q, %v) = %v, %v; want %v", tt.in, tt.max, got, err, tt.want)
		}
	}
}

func TestFormatLifetime(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{time.Minute, "1m"},
		{90 * time.Minute, "1h30m"},
		{12 * time.Hour, "12h"},
		{day, "1d"},
		{36 * time.Hour, "1d12h"},
		{90 * day, "90d"},
		{365 * day, "365d"},
		{day + 1500*time.Millisecond, "1d1.5s"},
		{2*time.Hour + 500*time.Millisecond, "2h0m0.5s"},
		{-2 * day, "-2d"},
	} {
		got := berth.FormatLifetime(tt.in)
		if got != tt.want {
			t.Errorf("FormatLifetime(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in > 0 {
			if back, err := berth.ParseLifetime(got, math.MaxInt64); err != nil || back != tt.in {
				t.Errorf("ParseLifetime(FormatLifetime(%v)) = %v, %v", tt.in, back, err)
			}
		}
	}
}

func TestSecretStateAndNeedsTouch(t *testing.T) {
	expires := secretEpoch.Add(time.Hour)
	revoked := secretEpoch.Add(time.Minute)
	s := berth.Secret{Created: secretEpoch, Expires: expires}
	for _, tt := range []struct {
		s    berth.Secret
		now  time.Time
		want berth.SecretState
	}{
		{s, secretEpoch, berth.SecretActive},
		{s, expires.Add(-time.Nanosecond), berth.SecretActive},
		{s, expires, berth.SecretExpired},
		{s, expires.Add(time.Hour), berth.SecretExpired},
		{berth.Secret{Expires: expires, Revoked: &revoked}, secretEpoch, berth.SecretRevoked},
		{berth.Secret{Expires: expires, Revoked: &revoked}, expires.Add(time.Hour), berth.SecretRevoked},
	} {
		if got := tt.s.State(tt.now); got != tt.want {
			t.Errorf("State at %v = %s, want %s", tt.now, got, tt.want)
		}
	}

	if !s.NeedsTouch(secretEpoch) {
		t.Error("a secret never used needs no touch")
	}
	used := secretEpoch
	s.LastUsed = &used
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{
		{0, false},
		{berth.SecretTouchInterval - time.Nanosecond, false},
		{berth.SecretTouchInterval, true},
		{time.Hour, true},
	} {
		if got := s.NeedsTouch(used.Add(tt.after)); got != tt.want {
			t.Errorf("NeedsTouch %v after the last use = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestAuthenticateSecret(t *testing.T) {
	h := testHasher(t)
	web := berth.Principal{ID: "00000000-0000-4000-8000-00000000000a", Name: "ci-web", ClientID: "123e4567-e89b-12d3-a456-426614174000", Kind: berth.PrincipalService}
	api := berth.Principal{ID: "00000000-0000-4000-8000-00000000000b", Name: "ci-api", ClientID: "223e4567-e89b-12d3-a456-426614174000", Kind: berth.PrincipalService}
	disabled := web
	disabled.Disabled = true

	type made struct {
		s berth.Secret
		v string
	}
	newSecret := func(p berth.Principal, created time.Time, lifetime time.Duration) made {
		s, v, err := berth.NewSecret(randReader(t), h, p.ID, created, lifetime, "")
		if err != nil {
			t.Fatal(err)
		}
		return made{s, v.Reveal()}
	}
	day := 24 * time.Hour
	t0 := secretEpoch
	old := newSecret(web, t0, 30*day) // expires at t0+30d
	current := newSecret(web, t0.Add(20*day), 90*day)
	next := newSecret(web, t0.Add(25*day), 90*day) // rotation overlap
	removed := newSecret(web, t0, 90*day)
	revokedAt := t0.Add(10 * day)
	removed.s.Revoked = &revokedAt
	removedExpired := newSecret(web, t0, day)
	removedExpired.s.Revoked = &revokedAt
	foreign := newSecret(api, t0, 90*day)
	// A secret listed under web whose principal id is api's: ignored.
	stray := newSecret(api, t0, 90*day)

	secrets := []berth.Secret{old.s, current.s, next.s, removed.s, removedExpired.s, stray.s}
	unknown, err := berth.NewSecretValue(randReader(t))
	if err != nil {
		t.Fatal(err)
	}
	typo := current.v[:20] + string(current.v[20]^1) + current.v[21:]

	now := t0.Add(85 * day) // old expired 55 days ago
	tests := []struct {
		name      string
		now       time.Time
		p         berth.Principal
		presented string
		want      berth.Code
		wantID    string // the secret authenticated, when want is ""
	}{
		{"current", now, web, current.v, "", current.s.ID},
		{"rotation overlap", now, web, next.v, "", next.s.ID},
		{"an instant before expiry", old.s.Expires.Add(-time.Nanosecond), web, old.v, "", old.s.ID},

		{"expired", now, web, old.v, berth.CodeSecretExpired, ""},
		{"expired at the instant", old.s.Expires, web, old.v, berth.CodeSecretExpired, ""},
		{"revoked", now, web, removed.v, berth.CodeSecretRevoked, ""},
		{"revoked before expiry is revoked", revokedAt.Add(time.Hour), web, removed.v, berth.CodeSecretRevoked, ""},
		{"revoked and expired is revoked", now, web, removedExpired.v, berth.CodeSecretRevoked, ""},
		{"disabled", now, disabled, current.v, berth.CodePrincipalDisabled, ""},
		{"disabled with a revoked secret", now, disabled, removed.v, berth.CodePrincipalDisabled, ""},
		{"disabled with an expired secret", now, disabled, old.v, berth.CodePrincipalDisabled, ""},
		{"disabled with a wrong secret", now, disabled, unknown.Reveal(), berth.CodeSecretInvalid, ""},
		{"secret id", now, web, current.s.ID, berth.CodeSecretIDSent, ""},
		{"upper-case secret id", now, web, strings.ToUpper(current.s.ID), berth.CodeSecretIDSent, ""},
		{"id of a removed secret", now, web, removed.s.ID, berth.CodeSecretIDSent, ""},
		{"secret id to a disabled principal", now, disabled, current.s.ID, berth.CodeSecretIDSent, ""},
		{"unknown secret", now, web, unknown.Reveal(), berth.CodeSecretInvalid, ""},
		{"another principal's secret", now, web, foreign.v, berth.CodeSecretInvalid, ""},
		{"a stray secret of another principal", now, web, stray.v, berth.CodeSecretInvalid, ""},
		{"another principal's secret id", now, web, foreign.s.ID, berth.CodeSecretInvalid, ""},
		{"typo", now, web, typo, berth.CodeSecretInvalid, ""},
		{"truncated", now, web, current.v[:30], berth.CodeSecretInvalid, ""},
		{"trailing newline", now, web, current.v + "\n", berth.CodeSecretInvalid, ""},
		{"empty", now, web, "", berth.CodeSecretInvalid, ""},
		{"client id", now, web, web.ClientID, berth.CodeSecretInvalid, ""},
		{"a token", now, web, "eyJhbGciOiJFUzI1NiJ9.e30.sig", berth.CodeSecretInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := berth.AuthenticateSecret(tt.now, h, tt.p, secrets, tt.presented)
			if code := berth.ErrorCode(err); code != tt.want {
				t.Fatalf("code %q, want %q (err: %v)", code, tt.want, err)
			}
			if tt.want == "" {
				if got.ID != tt.wantID {
					t.Errorf("authenticated secret %s, want %s", got.ID, tt.wantID)
				}
				return
			}
			if got.ID != "" {
				t.Errorf("a refusal returned secret %s", got.ID)
			}
			e := berth.AsError(err)
			if e.Hint == "" {
				t.Error("no hint")
			}
			var leaks []string
			for _, m := range []made{old, current, next, removed, removedExpired, foreign, stray} {
				leaks = append(leaks, secretLeaks(m.v, m.s.Hash)...)
			}
			leaks = append(leaks, secretLeaks(unknown.Reveal(), nil)...)
			detail, _ := json.Marshal(e.Detail)
			wantNoLeak(t, "the error", e.Error()+string(detail), leaks)
		})
	}

	// The facts an expired secret's error states.
	_, err = berth.AuthenticateSecret(now, h, web, secrets, old.v)
	e := berth.AsError(err)
	for _, fact := range []string{old.s.Hint, "ci-web", "2026-04-13T15:09:26Z", "55 days ago"} {
		if !strings.Contains(e.Message, fact) {
			t.Errorf("the expiry message %q does not state %q", e.Message, fact)
		}
	}
	if !strings.Contains(e.Hint, "berth secret add ci-web --expires-in 90d") {
		t.Errorf("the expiry hint %q does not name the command", e.Hint)
	}
	if e.Detail["secret_id"] != old.s.ID {
		t.Errorf("detail %v lacks the secret id", e.Detail)
	}
	_, err = berth.AuthenticateSecret(now, h, web, secrets, removed.v)
	e = berth.AsError(err)
	for _, fact := range []string{removed.s.Hint, "ci-web", "2026-03-24T15:09:26Z", "75 days ago"} {
		if !strings.Contains(e.Message, fact) {
			t.Errorf("the removal message %q does not state %q", e.Message, fact)
		}
	}
}
