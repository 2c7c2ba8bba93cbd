package oauth_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

func keyIDs(kr *oauth.Keyring) []string {
	var ids []string
	for _, k := range kr.Keys() {
		ids = append(ids, k.ID)
	}
	return ids
}

// jwksKeys returns the keys of the keyring's JWKS, as a client reads them.
func jwksKeys(t *testing.T, kr *oauth.Keyring) []map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(kr.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

func TestLoadKeyringCreatesOneKey(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	keys := kr.Keys()
	if len(keys) != 1 || keys[0].Algorithm != "ES256" || !keys[0].Retired.IsZero() || !keys[0].Created.Equal(t0) {
		t.Fatalf("Keys() = %+v, want one ES256 signing key created at t0", keys)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != keys[0].ID+".json" {
		t.Fatalf("the folder holds %v, want %s.json alone", entries, keys[0].ID)
	}
	// The kid is the RFC 7638 thumbprint of the public key.
	priv := privateKey(t, dir, keys[0].ID)
	pub := priv.Public()
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := b64(string(thumb)); got != keys[0].ID {
		t.Errorf("kid %s is not the thumbprint %s", keys[0].ID, got)
	}
}

func TestKeyFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	kr, dir := newKeyring(t, 1)
	if _, err := kr.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("the key folder has mode %v, want 0700", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("the folder holds %d files after a rotation, want 2", len(entries))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}

func TestLoadKeyringRefusesReadableKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	kr, dir := newKeyring(t, 1)
	path := filepath.Join(dir, kr.Keys()[0].ID+".json")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := oauth.LoadKeyring(dir, t0, seeded(1))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadKeyring with a key readable by others: %v, want a refusal naming chmod 600", err)
	}
}

func TestLoadKeyringRefusesBadFiles(t *testing.T) {
	_, other := newKeyring(t, 9)
	otherKid := keyIDs(loadKeyring(t, other, t0, 9))[0]
	otherFile, err := os.ReadFile(filepath.Join(other, otherKid+".json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]struct{ name, content string }{
		"not JSON":            {"x.json", "{"},
		"no key":              {"x.json", `{"created":"2026-03-14T15:09:26Z"}`},
		"a public key only":   {"x.json", `{"created":"2026-03-14T15:09:26Z","key":` + string(mustJSON(t, publicKey(t, other, otherKid))) + `}`},
		"named after another": {"wrongname.json", string(otherFile)},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, file.name), []byte(file.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := oauth.LoadKeyring(dir, t0, seeded(1)); err == nil {
				t.Error("LoadKeyring accepted it")
			}
		})
	}
	// Temporary files of an interrupted write and other names are ignored.
	dir := t.TempDir()
	for _, name := range []string{".key-123.tmp", "README", ".hidden.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := oauth.LoadKeyring(dir, t0, seeded(1)); err != nil {
		t.Errorf("LoadKeyring with stray files: %v", err)
	}
}

func publicKey(t *testing.T, dir, kid string) jose.JSONWebKey {
	k := privateKey(t, dir, kid)
	return k.Public()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyringReloadYieldsSameKeys(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	before := sign(t, kr, claims(t0))
	if _, err := kr.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	after := sign(t, kr, claims(t0.Add(time.Minute)))

	// Another seed: a reload must not create or change a key.
	again := loadKeyring(t, dir, t0.Add(2*time.Minute), 77)
	if !slices.Equal(keyIDs(again), keyIDs(kr)) {
		t.Fatalf("reloaded keys %v, want %v", keyIDs(again), keyIDs(kr))
	}
	if string(again.JWKS()) != string(kr.JWKS()) {
		t.Errorf("reloaded JWKS differs:\n%s\n%s", again.JWKS(), kr.JWKS())
	}
	for i, k := range again.Keys() {
		if want := kr.Keys()[i]; !k.Created.Equal(want.Created) || !k.Retired.Equal(want.Retired) {
			t.Errorf("key %s reloaded as %+v, want %+v", k.ID, k, want)
		}
	}
	for _, token := range []string{before, after} {
		if _, err := again.Verify(token, t0.Add(3*time.Minute)); err != nil {
			t.Errorf("a token of the first keyring: %v", err)
		}
	}
	if kid := kidOf(t, sign(t, again, claims(t0.Add(2*time.Minute)))); kid != keyIDs(kr)[1] {
		t.Errorf("the reloaded keyring signs with %s, want the newest key %s", kid, keyIDs(kr)[1])
	}
}

func TestKeyGenerationIsSeeded(t *testing.T) {
	a, _ := newKeyring(t, 5)
	b, _ := newKeyring(t, 5)
	c, _ := newKeyring(t, 6)
	if keyIDs(a)[0] != keyIDs(b)[0] || keyIDs(a)[0] == keyIDs(c)[0] {
		t.Errorf("kids %v %v %v: the same seed must give the same key, another seed another", keyIDs(a), keyIDs(b), keyIDs(c))
	}
}

func TestRotation(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	oldKid := keyIDs(kr)[0]
	old := sign(t, kr, claims(t0))

	rotated := t0.Add(5 * time.Minute)
	newKid, err := kr.Rotate(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || !slices.Equal(keyIDs(kr), []string{oldKid, newKid}) {
		t.Fatalf("after Rotate: keys %v, new %s", keyIDs(kr), newKid)
	}
	if r := kr.Keys()[0].Retired; !r.Equal(rotated) {
		t.Errorf("the old key is retired at %v, want %v", r, rotated)
	}
	fresh := sign(t, kr, claims(rotated))
	if kidOf(t, fresh) != newKid {
		t.Errorf("a token signed after the rotation has kid %s, want %s", kidOf(t, fresh), newKid)
	}
	// Both keys are published, the signing one first.
	if keys := jwksKeys(t, kr); len(keys) != 2 || keys[0]["kid"] != newKid || keys[1]["kid"] != oldKid {
		t.Errorf("JWKS after rotation: %v", keys)
	}
	// The old token still verifies until it expires.
	if _, err := kr.Verify(old, rotated.Add(time.Minute)); err != nil {
		t.Errorf("a token of the retired key: %v", err)
	}

	// A token the retired key "signs" after its retirement is a forgery.
	oldKey := privateKey(t, dir, oldKid)
	late := payload(rotated.Add(time.Minute))
	forged := forge(t, oldKey, jose.ES256, map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}, late)
	_, err = kr.Verify(forged, rotated.Add(time.Minute))
	wantCode(t, "a token of the retired key issued after its retirement", err, berth.CodeTokenInvalid)

	// Until retirement + MaxTokenLifetime + Leeway, Prune keeps the key.
	until := rotated.Add(oauth.DefaultMaxTokenLifetime + oauth.Leeway)
	if pruned, err := kr.Prune(until); err != nil || len(pruned) != 0 {
		t.Fatalf("Prune at the edge: %v, %v", pruned, err)
	}
	// A token it signed before retirement, valid at that instant, still verifies.
	c := claims(rotated.Add(-oauth.Leeway))
	c.Expires = until
	edge := forge(t, oldKey, jose.ES256, map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}, map[string]any{
		"iss": issuer, "aud": audience, "sub": c.Subject, "iat": c.IssuedAt.Unix(), "exp": c.Expires.Unix(), "access": []any{},
	})
	if _, err := kr.Verify(edge, until); err != nil {
		t.Errorf("a token of the retired key at the end of its window: %v", err)
	}
	// One second later the key is no longer trusted, even before Prune runs.
	_, err = kr.Verify(edge, until.Add(time.Second))
	wantCode(t, "a token of a retired key past its window", err, berth.CodeTokenInvalid)

	pruned, err := kr.Prune(until.Add(time.Second))
	if err != nil || !slices.Equal(pruned, []string{oldKid}) {
		t.Fatalf("Prune past the window: %v, %v", pruned, err)
	}
	if !slices.Equal(keyIDs(kr), []string{newKid}) {
		t.Errorf("keys after Prune: %v", keyIDs(kr))
	}
	if keys := jwksKeys(t, kr); len(keys) != 1 || keys[0]["kid"] != newKid {
		t.Errorf("JWKS after Prune: %v", keys)
	}
	if _, err := os.Stat(filepath.Join(dir, oldKid+".json")); !os.IsNotExist(err) {
		t.Errorf("the pruned key's file: %v, want it gone", err)
	}
	_, err = kr.Verify(old, until.Add(time.Second))
	wantCode(t, "a token of a pruned key", err, berth.CodeTokenInvalid)
	// The key that signs is never pruned.
	if pruned, _ := kr.Prune(until.Add(1000 * time.Hour)); len(pruned) != 0 {
		t.Errorf("Prune removed the signing key: %v", pruned)
	}
}

func TestRotationHonoursMaxTokenLifetime(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	kr.MaxTokenLifetime = 4 * time.Hour
	oldKid := keyIDs(kr)[0]
	if _, err := kr.Rotate(t0); err != nil {
		t.Fatal(err)
	}
	if pruned, _ := kr.Prune(t0.Add(2 * time.Hour)); len(pruned) != 0 {
		t.Errorf("pruned %v two hours into a four-hour window", pruned)
	}
	if pruned, _ := kr.Prune(t0.Add(5 * time.Hour)); !slices.Equal(pruned, []string{oldKid}) {
		t.Errorf("pruned %v after the window, want %s", pruned, oldKid)
	}
}

func TestRotateTwiceAtOneInstant(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	k1, err := kr.Rotate(t0)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := kr.Rotate(t0)
	if err != nil {
		t.Fatal(err)
	}
	again := loadKeyring(t, dir, t0, 3)
	if ids := keyIDs(again); len(ids) != 3 || ids[2] != k2 || !slices.Contains(ids, k1) {
		t.Errorf("reloaded %v, want 3 keys with %s signing", ids, k2)
	}
}

// TestInterruptedRotation loads a folder holding two keys neither of which is
// retired, as a rotation that stopped after writing the new key leaves it.
func TestInterruptedRotation(t *testing.T) {
	kr, dir := newKeyring(t, 1)
	oldKid := keyIDs(kr)[0]
	old := sign(t, kr, claims(t0))
	laterDir := filepath.Join(t.TempDir(), "keys")
	laterKid := keyIDs(loadKeyring(t, laterDir, t0.Add(time.Hour), 3))[0]
	content, err := os.ReadFile(filepath.Join(laterDir, laterKid+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, laterKid+".json"), content, 0o600); err != nil {
		t.Fatal(err)
	}

	got := loadKeyring(t, dir, t0.Add(time.Hour), 4)
	keys := got.Keys()
	if len(keys) != 2 || keys[1].ID != laterKid || keys[0].ID != oldKid || !keys[0].Retired.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Keys() = %+v, want %s retired when %s was created", keys, oldKid, laterKid)
	}
	if _, err := got.Verify(old, t0.Add(time.Hour+time.Minute)); err != nil {
		// Expired by then; what matters is that it is not refused as unknown.
		wantCode(t, "the old key's token", err, berth.CodeTokenExpired)
	}
}

func TestEdDSAKeyFromDisk(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: priv}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	kid := b64(string(thumb))
	file := map[string]any{"created": t0, "key": jwk}
	if err := os.WriteFile(filepath.Join(dir, kid+".json"), mustJSON(t, file), 0o600); err != nil {
		t.Fatal(err)
	}
	kr := loadKeyring(t, dir, t0, 1)
	if keys := kr.Keys(); len(keys) != 1 || keys[0].ID != kid || keys[0].Algorithm != "EdDSA" {
		t.Fatalf("Keys() = %+v, want the EdDSA key alone", keys)
	}
	token := sign(t, kr, claims(t0))
	if _, err := kr.Verify(token, t0); err != nil {
		t.Fatal(err)
	}
	if keys := jwksKeys(t, kr); keys[0]["alg"] != "EdDSA" || keys[0]["crv"] != "Ed25519" {
		t.Errorf("JWKS: %v", keys)
	}
}

func TestJWKSHoldsNoPrivateKey(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	if _, err := kr.Rotate(t0); err != nil {
		t.Fatal(err)
	}
	for _, k := range jwksKeys(t, kr) {
		if _, ok := k["d"]; ok {
			t.Errorf("the JWKS holds a private key: %v", k)
		}
		if k["use"] != "sig" || k["alg"] != "ES256" || k["kty"] != "EC" || k["crv"] != "P-256" || k["kid"] == "" {
			t.Errorf("JWKS key %v, want use sig, alg ES256, an EC P-256 key and a kid", k)
		}
	}
}

func TestReloadSeesAnotherProcessRotate(t *testing.T) {
	server, dir := newKeyring(t, 1)
	old := sign(t, server, claims(t0))
	cli := loadKeyring(t, dir, t0.Add(time.Minute), 2) // berth keys rotate
	newKid, err := cli.Rotate(t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(t0.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, sign(t, server, claims(t0.Add(2*time.Minute)))); kid != newKid {
		t.Errorf("after Reload the server signs with %s, want %s", kid, newKid)
	}
	if _, err := server.Verify(old, t0.Add(2*time.Minute)); err != nil {
		t.Errorf("a token of the retired key after Reload: %v", err)
	}
}
