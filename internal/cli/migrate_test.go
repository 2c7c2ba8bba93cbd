package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
	"github.com/berth-dev/berth/internal/s3test"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

// cliJSON runs a command with -o json and decodes its output.
func cliJSON(t *testing.T, env map[string]string, out any, args ...string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("%v: %v: %s", args, err, stdout)
		}
	}
}

// tokenResponse asks /oauth2/token of base and returns its status and body.
func tokenRequest(t *testing.T, method, base string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, base+"/oauth2/token?"+form.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// A single-node installation, populated through a real server, moves to a
// fresh PostgreSQL schema and S3 bucket; the first run is interrupted after
// a few blobs and the second finishes; a server on the target then accepts
// the old secret, access token and refresh token, serves the images, tags and
// referrers, and its audit log verifies. A revoked secret stays revoked.
func TestMigrateToPostgresAndS3(t *testing.T) {
	dsn := pgSchema(t)
	gw := s3test.Start(t)
	blobsURL := gw.URL(gw.Bucket(t))

	// The source: a data folder served once, populated through the server.
	dir := t.TempDir()
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Groups: []string{"devs"}})
	src := startServe(t, dir)
	adminID, adminSecret := src.admin(t)
	admin := map[string]string{"BERTH_URL": src.url, "BERTH_CLIENT_ID": adminID, "BERTH_CLIENT_SECRET": adminSecret, "HOME": t.TempDir()}
	cliJSON(t, admin, nil, "principal", "create", "ci")
	var sec, old struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	}
	cliJSON(t, admin, &sec, "secret", "add", "ci", "--expires-in", "30d")
	cliJSON(t, admin, &old, "secret", "add", "ci", "--expires-in", "30d")
	cliJSON(t, admin, nil, "secret", "remove", "ci", old.ID)
	cliJSON(t, admin, nil, "role", "assign", "--principal", "ci", "--role", "push", "--scope", "team/*")
	cliJSON(t, admin, nil, "pipeline", "create", "web-main", "--github", "org/web@main")
	cliJSON(t, admin, nil, "connection", "create", "web", "--principal", "ci")
	cliJSON(t, admin, nil, "connection", "authorize", "web", "--pipeline", "web-main")
	cliJSON(t, admin, nil, "webhook", "create", "http://127.0.0.1:9/hook", "--events", "image.pushed")
	up := upstreamtest.New(t, "bot", "pw-migrated")
	if code, _, stderr := runUpstreamCLI(t, admin, "pw-migrated\n", "text", "create", "hub", "--url", up.URL, "--namespace", "hub",
		"--username", "bot", "--password-stdin"); code != 0 {
		t.Fatalf("upstream create: %s", stderr)
	}
	cliJSON(t, admin, nil, "immutable", "add", "team/*", "--tags", "v*")
	cliJSON(t, admin, nil, "retention", "set", "team/*", "--keep-last", "10", "--untagged-after", "7d")
	cliJSON(t, admin, nil, "quota", "set", "team/*", "--max-size", "50GiB")
	// People: a provider (its secret sealed by the data folder's key), a
	// group's role, a person who signed in, and their token.
	src.apiJSON(t, http.MethodPost, "/api/v1/idps", map[string]any{"name": "corp", "issuer": company.URL, "client_id": "berth-app", "client_secret": "upstream-secret"}, http.StatusCreated)
	cliJSON(t, admin, nil, "role", "assign", "--group", "corp:devs", "--role", "pull", "--scope", "team/*")
	person := loginPerson(t, src)
	var pat struct{ Value string }
	cliJSON(t, person, &pat, "token", "create", "--scope", "repository:team/app:pull")

	host := strings.TrimPrefix(src.url, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: sec.Value})
	ref := func(host, s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rnd := rand.New(rand.NewSource(8))
	var images []v1.Image
	for i, tag := range []string{"v1", "v2"} {
		img, err := random.Image(4096, 3, random.WithSource(rnd))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref(host, "team/app:"+tag), img, auth); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		images = append(images, img)
	}
	idx, err := random.Index(1024, 2, 2, random.WithSource(rnd))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(host, "team/multi:latest"), idx, auth); err != nil {
		t.Fatal(err)
	}
	subject, _ := images[0].Digest()
	desc, err := remote.Head(ref(host, "team/app:v1"), auth)
	if err != nil {
		t.Fatal(err)
	}
	sbom := mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.example.sbom"), types.OCIManifestSchema1)
	sbom = mutate.Subject(sbom, *desc).(v1.Image)
	sbomDigest, _ := sbom.Digest()
	if err := remote.Write(ref(host, "team/app@"+sbomDigest.String()), sbom, auth); err != nil {
		t.Fatal(err)
	}
	// Through the cache namespace, one platform of a multi-platform index:
	// the source holds the index and that platform's image, not the other.
	adminAuth := remote.WithAuth(&authn.Basic{Username: adminID, Password: adminSecret})
	platforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	var adds []mutate.IndexAddendum
	for i := range platforms {
		img, err := random.Image(1024, 1, random.WithSource(rnd))
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platforms[i]}})
	}
	if err := remote.WriteIndex(ref(up.PushHost, "library/multi:1"), mutate.AppendManifests(empty.Index, adds...)); err != nil {
		t.Fatal(err)
	}
	pullPlatform := func(host string) v1.Hash {
		t.Helper()
		img, err := remote.Image(ref(host, "hub/library/multi:1"), adminAuth, remote.WithPlatform(platforms[1]))
		if err != nil {
			t.Fatalf("pull linux/arm64 of hub/library/multi:1 from %s: %v", host, err)
		}
		// The whole image, its config too: the cache stores an image
		// manifest once its blobs are in.
		if err := validate.Image(img); err != nil {
			t.Fatalf("linux/arm64 of hub/library/multi:1 from %s: %v", host, err)
		}
		d, _ := img.Digest()
		return d
	}
	cachedPlatform := pullPlatform(host)
	// Tokens made before the move: an access token and a refresh token.
	code, tok := tokenRequest(t, http.MethodGet, src.url, url.Values{"service": {"berth"}, "scope": {"repository:team/app:pull"}, "offline_token": {"true"}}, "ci", sec.Value)
	access, _ := tok["token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if code != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("token before the move: %d %v", code, tok)
	}
	src.stop(t)

	// The move, interrupted after two blobs, then finished.
	menv := map[string]string{"BERTH_KEY_ENCRYPTION_KEY": pgEnv(dsn)["BERTH_KEY_ENCRYPTION_KEY"]}
	maps.Copy(menv, map[string]string{"AWS_ACCESS_KEY_ID": gw.Getenv("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": gw.Getenv("AWS_SECRET_ACCESS_KEY")})
	cfg, err := loadConfig(configFlags{data: dir}, mapEnv(menv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stderr bytes.Buffer
	err = runMigrate(ctx, cfg, dsn, blobsURL, &env{stdout: &stderr, stderr: &stderr, getenv: mapEnv(menv)}, migrateHooks{afterBlob: func(n int) {
		if n == 2 {
			cancel()
		}
	}})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("interrupted migration: %v, want context canceled\n%s", err, stderr.String())
	}
	args := []string{"migrate", "--data", dir, "--to-db", dsn, "--to-blobs", blobsURL}
	code, _, out := runCLI(t, menv, args...)
	if code != 0 {
		t.Fatalf("migrate after the interruption: exit %d:\n%s", code, out)
	}
	t.Logf("migrate:\n%s", out)
	if !strings.Contains(out, "2 already there") || strings.Contains(out, s3test.SecretKey) {
		t.Errorf("the second run did not skip the 2 blobs the first copied, or printed the S3 secret:\n%s", out)
	}
	// Its closing line can be pasted: the URLs are quoted for the shell.
	if !strings.Contains(out, "--blobs '") || !strings.Contains(out, "--db '") {
		t.Errorf("the closing line does not quote the URLs:\n%s", out)
	}
	// In a replica's environment, the refusal names the variable, not a flag.
	withDB := maps.Clone(menv)
	withDB["BERTH_DB"] = dsn
	if code, _, out := runCLI(t, withDB, args...); code != 1 || !strings.Contains(out, "[invalid]") || !strings.Contains(out, "unset BERTH_DB") {
		t.Errorf("migrate with BERTH_DB set: exit %d:\n%s", code, out)
	}
	// A third run finds everything there.
	code, _, out = runCLI(t, menv, args...)
	if code != 0 {
		t.Fatalf("migrate again: exit %d:\n%s", code, out)
	}
	for _, m := range regexp.MustCompile(`([0-9]+) copied`).FindAllStringSubmatch(out, -1) {
		if m[1] != "0" {
			t.Errorf("a third run copied something:\n%s", out)
			break
		}
	}

	// A replica on the target, with a data folder of its own.
	tenv := maps.Clone(menv)
	tenv["BERTH_DB"], tenv["BERTH_BLOBS"] = dsn, blobsURL
	dst := startServeEnv(t, tenv, t.TempDir())
	thost := strings.TrimPrefix(dst.url, "http://")
	for i, tag := range []string{"v1", "v2"} {
		got, err := remote.Image(ref(thost, "team/app:"+tag), auth)
		if err != nil {
			t.Fatalf("pull %s with the old secret: %v", tag, err)
		}
		want, _ := images[i].Digest()
		if d, _ := got.Digest(); d != want {
			t.Errorf("pulled %s as %s, pushed %s", tag, d, want)
		}
		layers, _ := got.Layers()
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest as it reads
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(rc); err != nil {
				t.Fatalf("layer of %s: %v", tag, err)
			}
		}
	}
	if _, err := remote.Index(ref(thost, "team/multi:latest"), auth); err != nil {
		t.Errorf("pull the index: %v", err)
	}
	// The lifecycle rules came along, and hold on the target.
	tadmin := maps.Clone(admin)
	tadmin["BERTH_URL"] = dst.url
	var imm []berth.ImmutableRule
	var ret []berth.RetentionRule
	var quotas []struct{ Scope, MaxSize any }
	cliJSON(t, tadmin, &imm, "immutable", "list")
	cliJSON(t, tadmin, &ret, "retention", "list")
	cliJSON(t, tadmin, &quotas, "quota", "list")
	if len(imm) != 1 || imm[0].Tags != "v*" || len(ret) != 1 || ret[0].KeepLast != 10 || ret[0].UntaggedAfter != 7*24*time.Hour || len(quotas) != 1 {
		t.Errorf("lifecycle rules on the target: %+v %+v %+v", imm, ret, quotas)
	}
	if err := remote.Write(ref(thost, "team/app:v1"), images[1], auth); !berth.IsCode(apiReason(err), berth.CodeTagImmutable) {
		t.Errorf("moving v1 on the target: %v", err)
	}
	tags, err := remote.List(ref(thost, "team/app").Context(), auth)
	if err != nil || !slices.Equal(tags, []string{"v1", "v2"}) {
		t.Errorf("tags on the target: %v, %v", tags, err)
	}
	referrers, err := remote.Referrers(ref(thost, "team/app@"+subject.String()).(name.Digest), auth)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := referrers.IndexManifest(); len(m.Manifests) != 1 || m.Manifests[0].Digest != sbomDigest {
		t.Errorf("referrers on the target: %+v", m)
	}
	// The key that signed the access token before the move is the target's:
	// its JWKS publishes it. (The token itself names the source's address as
	// its issuer; a real move keeps the address, url: in the configuration.)
	header, _, _ := strings.Cut(access, ".")
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var jwt struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(hb, &jwt)
	resp, jwks := dst.do(t, "GET", "/oauth2/jwks", map[string]string{"Authorization": ""}, nil)
	if resp.StatusCode != http.StatusOK || jwt.Kid == "" || !strings.Contains(string(jwks), `"`+jwt.Kid+`"`) {
		t.Errorf("the key %q that signed before the move is not in the target's JWKS: %d %s", jwt.Kid, resp.StatusCode, jwks)
	}
	code, tok = tokenRequest(t, http.MethodPost, dst.url, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"berth-cli"}, "service": {"berth"}}, "", "")
	if code != http.StatusOK {
		t.Errorf("the refresh token of before the move: %d %v", code, tok)
	}
	code, tok = tokenRequest(t, http.MethodGet, dst.url, url.Values{"service": {"berth"}}, "ci", old.Value)
	if code == http.StatusOK || !strings.Contains(fmt.Sprint(tok), "secret_revoked") {
		t.Errorf("the removed secret on the target: %d %v, want secret_revoked", code, tok)
	}
	// People on the target: the provider's secret opens with the target's
	// key, the person signs in as the same principal, their group's role
	// and their token hold.
	if _, page := newBrowser(t).get(dst.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada</strong>") {
		t.Errorf("sign-in on the target:\n%s", page)
	}
	if _, err := remote.List(ref(thost, "team/app").Context(), remote.WithAuth(&authn.Basic{Username: "ada", Password: pat.Value})); err != nil {
		t.Errorf("the personal access token on the target: %v", err)
	}
	var people []berth.Principal
	cliJSON(t, tadmin, &people, "principal", "list", "--kind", "user")
	if len(people) != 1 || people[0].Name != "ada" {
		t.Errorf("people on the target: %+v", people)
	}
	// The upstream's credential, sealed again with the key encryption key,
	// still opens and works on the target.
	if code, stdout, stderr := runCLI(t, tadmin, "upstream", "verify", "hub"); code != 0 {
		t.Errorf("upstream verify on the target: exit %d: %s %s", code, stdout, stderr)
	}
	// The cached index and platform came along: served with the upstream down.
	up.Stop()
	if d := pullPlatform(thost); d != cachedPlatform {
		t.Errorf("the cached platform on the target is %s, want %s", d, cachedPlatform)
	}
	dst.stop(t)
	pgOnly := map[string]string{"BERTH_DB": dsn, "BERTH_KEY_ENCRYPTION_KEY": menv["BERTH_KEY_ENCRYPTION_KEY"]}
	if code, stdout, stderr := runCLI(t, pgOnly, "audit", "verify", "--data", t.TempDir()); code != 0 {
		t.Errorf("audit verify on the target: exit %d: %s %s", code, stdout, stderr)
	}
	var events []map[string]any
	cliJSON(t, pgOnly, &events, "audit", "--since", "1h", "--data", t.TempDir())
	if len(events) == 0 {
		t.Error("the target's audit log is empty")
	}
	if _, err := os.Stat(filepath.Join(dir, metadataFile)); err != nil {
		t.Errorf("the source was changed: %v", err)
	}
}

// A blob whose bytes no longer match its digest is refused and named; the
// rest is copied, and the command fails.
func TestMigrateRefusesCorruptBlob(t *testing.T) {
	dsn := pgSchema(t)
	gw := s3test.Start(t)
	blobsURL := gw.URL(gw.Bucket(t))
	dir := t.TempDir()
	src := startServe(t, dir)
	id, secret := src.admin(t)
	img, err := random.Image(2048, 2, random.WithSource(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(strings.TrimPrefix(src.url, "http://")+"/team/app:v1", name.Insecure)
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}
	src.stop(t)
	layers, _ := img.Layers()
	bad, _ := layers[0].Digest()
	var path string
	filepath.WalkDir(filepath.Join(dir, "storage"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, bad.Hex) {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatalf("no file of blob %s under the storage folder", bad)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	menv := map[string]string{"BERTH_KEY_ENCRYPTION_KEY": pgEnv(dsn)["BERTH_KEY_ENCRYPTION_KEY"],
		"AWS_ACCESS_KEY_ID": gw.Getenv("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": gw.Getenv("AWS_SECRET_ACCESS_KEY")}
	code, _, out := runCLI(t, menv, "migrate", "--data", dir, "--to-db", dsn, "--to-blobs", blobsURL)
	if code == 0 || !strings.Contains(out, bad.String()) || !strings.Contains(out, "refused") {
		t.Fatalf("migrate with a corrupt blob: exit %d, want a failure naming %s:\n%s", code, bad, out)
	}
	if !strings.Contains(out, "blobs 3/3 (2 copied") {
		t.Errorf("the other blobs were not copied:\n%s", out)
	}
}

// apiReason returns the berth refusal a go-containerregistry error carries
// (its reason code in the OCI error's detail), or err when it carries none.
func apiReason(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	for _, d := range te.Errors {
		if m, ok := d.Detail.(map[string]any); ok {
			if r, ok := m["reason"].(string); ok {
				return &berth.Error{Code: berth.Code(r), Message: d.Message}
			}
		}
	}
	return err
}
