package oauth

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
	"github.com/berth-dev/berth/internal/sqlite"
)

var benchNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func benchKeyring(b testing.TB) *Keyring {
	b.Helper()
	kr, err := LoadKeyring(filepath.Join(b.TempDir(), "keys"), benchNow, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	kr.Issuer, kr.Audience = "https://registry.test", "registry.test"
	return kr
}

func benchClaims() berth.AccessClaims {
	return berth.AccessClaims{
		Subject: "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", Name: "ci-web",
		ClientID: "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", CredentialID: "5e1d2c3b-4a59-4876-9a5b-4c3d2e1f0a9b",
		Access:   []berth.ResourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}},
		IssuedAt: benchNow, Expires: benchNow.Add(berth.DefaultAccessTokenLifetime),
	}
}

func BenchmarkSign(b *testing.B) {
	kr := benchKeyring(b)
	c := benchClaims()
	for b.Loop() {
		if _, err := kr.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a full verification: what the first request with a
// token costs.
func BenchmarkVerify(b *testing.B) {
	kr := benchKeyring(b)
	token, err := kr.Sign(benchClaims())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := kr.verify(token, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached measures what every later request with the same token
// costs.
func BenchmarkVerifyCached(b *testing.B) {
	kr := benchKeyring(b)
	token, err := kr.Sign(benchClaims())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := kr.Verify(token, benchNow); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := kr.Verify(token, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	kr := benchKeyring(b)
	tokens := make([]string, 64)
	for i := range tokens {
		c := benchClaims()
		c.Name = fmt.Sprint("ci-", i)
		var err error
		if tokens[i], err = kr.Sign(c); err != nil {
			b.Fatal(err)
		}
		if _, err := kr.Verify(tokens[i], benchNow); err != nil {
			b.Fatal(err)
		}
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := kr.Verify(tokens[i%len(tokens)], benchNow); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	c := newVerifiedCache(4)
	sum := func(i int) string { return fmt.Sprint("token-", i) }
	for i := range 10 {
		c.put(sum(i), verified{kid: fmt.Sprint(i)}, 0)
	}
	if c.len() != 4 {
		t.Fatalf("len = %d after 10 puts into 4 places", c.len())
	}
	for i := range 10 {
		_, ok := c.get(sum(i))
		if want := i >= 6; ok != want {
			t.Errorf("entry %d cached %v, want %v (the newest four stay)", i, ok, want)
		}
	}
	// A verification that began before a clear does not store its result.
	gen := c.generation()
	c.clear()
	c.put(sum(42), verified{}, gen)
	if _, ok := c.get(sum(42)); ok || c.len() != 0 {
		t.Error("a stale put was stored after clear")
	}
}

// TestSignRemembers: a token this keyring signed is remembered as one that
// verified, with the claims a verification reads from it, and is still
// refused once expired.
func TestSignRemembers(t *testing.T) {
	kr := benchKeyring(t)
	token, err := kr.Sign(benchClaims())
	if err != nil {
		t.Fatal(err)
	}
	if !kr.Remembers(token) {
		t.Fatal("a token just signed is not remembered")
	}
	cached, err := kr.Verify(token, benchNow)
	if err != nil {
		t.Fatal(err)
	}
	kr.cache.clear()
	verified, err := kr.Verify(token, benchNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached, verified) {
		t.Errorf("the claims remembered at signing differ from those verified:\n%+v\n%+v", cached, verified)
	}
	if _, err := kr.Verify(token, benchNow.Add(time.Hour)); !berth.IsCode(err, berth.CodeTokenExpired) {
		t.Errorf("the remembered token an hour later: %v, want token_expired", err)
	}
}

func TestVerifyCachesOnlySuccesses(t *testing.T) {
	kr := benchKeyring(t)
	token, err := kr.Sign(benchClaims())
	if err != nil {
		t.Fatal(err)
	}
	kr.cache.clear() // Sign remembers it: start from a token never verified
	if _, err := kr.Verify(token, benchNow.Add(time.Hour)); err == nil {
		t.Fatal("an expired token verified")
	}
	if kr.cache.len() != 0 {
		t.Error("a refused token was cached")
	}
	if _, err := kr.Verify(token, benchNow); err != nil {
		t.Fatal(err)
	}
	if kr.cache.len() != 1 {
		t.Error("a verified token was not cached")
	}
	if _, err := kr.Rotate(benchNow); err != nil {
		t.Fatal(err)
	}
	if kr.cache.len() != 0 {
		t.Error("Rotate left the cache")
	}
}

// BenchmarkExchange measures one CI ID token exchange with the issuer's key
// set cached: parsing, an RS256 verification, matching the pipeline and
// reading the connection and its principal from SQLite. Its inverse is the
// exchanges per second one core sustains.
func BenchmarkExchange(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "m.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	iss := oidctest.New(b)
	iss.Now = func() time.Time { return benchNow }
	pr, err := berth.NewPrincipal(rand.Reader, "ci-web", berth.PrincipalService, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	pl, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "github-main", Preset: berth.PresetGitHub, Spec: "org/app@main", Issuer: iss.URL}, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := berth.NewConnection(rand.Reader, "deploy", pr.ID, berth.ConnectionFederated, nil, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	conn.Pipelines = []string{pl.ID}
	for _, err := range []error{db.CreatePrincipal(ctx, pr), db.CreatePipeline(ctx, pl), db.CreateConnection(ctx, conn)} {
		if err != nil {
			b.Fatal(err)
		}
	}
	now := func() time.Time { return benchNow }
	p := &Provider{
		Store: db, Addrs: NewLimiter(1<<30, time.Minute, 0, now), Clients: NewLimiter(1<<30, time.Minute, 0, now),
		Now: now, Service: "registry.test", Federation: &Federation{Now: now},
	}
	token := iss.GitHub(oidctest.GitHubJob{Audience: "registry.test"})
	if _, err := p.Exchange(ctx, token, "deploy", "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Exchange(ctx, token, "deploy", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
	if n := iss.JWKSFetches(); n != 1 {
		b.Fatalf("%d JWKS fetches; want 1", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
