package scan

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomFrom returns n characters drawn from alphabet.
func randomFrom(t testing.TB, alphabet string, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// githubToken makes a classic GitHub token with a correct checksum, written
// here independently of the scanner's verifier.
func githubToken(t testing.TB, prefix string) string {
	body := randomFrom(t, alnum, 30)
	c := crc32.ChecksumIEEE([]byte(body))
	sum := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		sum[i] = alnum[c%62]
		c /= 62
	}
	return prefix + body + string(sum)
}

func berthSecret(t testing.TB) string {
	v, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

func berthRefreshToken(t testing.TB) string {
	v, err := berth.NewRefreshTokenValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

func berthWebhookSecret(t testing.TB) string {
	v, err := berth.NewWebhookSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

func berthPAT(t testing.TB) string {
	_, v, err := berth.NewPAT(rand.Reader, "p", nil, "", time.Now(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func berthSession(t testing.TB) string {
	v, err := berth.NewSessionValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func privateKeyPEM(t testing.TB) string {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// An ed25519 PKCS#8 body is short; pad the test key with an RSA-sized
	// body so the block looks like the common case too.
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: append(der, make([]byte, 64)...)}))
}

func jwt(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

// positives are credentials of each kind, the value the finding must carry.
func positives(t testing.TB) map[Kind][]string {
	return map[Kind][]string{
		KindBerthSecret:       {berthSecret(t)},
		KindBerthRefreshToken: {berthRefreshToken(t)},
		KindBerthWebhookKey:   {berthWebhookSecret(t)},
		KindBerthPAT:          {berthPAT(t)},
		KindBerthSession:      {berthSession(t)},
		KindPrivateKey:        {strings.TrimSuffix(privateKeyPEM(t), "\n")},
		KindDockerConfigAuth:  {base64.StdEncoding.EncodeToString([]byte("ci-web:" + berthSecret(t)))},
		KindAWSAccessKeyID:    {"AKIA" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), "ASIA" + randomFrom(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)},
		KindGitHubToken:       {githubToken(t, "ghp_"), githubToken(t, "gho_"), githubToken(t, "ghu_"), githubToken(t, "ghs_"), githubToken(t, "ghr_")},
		KindGitHubFineGrained: {"github_pat_" + randomFrom(t, alnum, 22) + "_" + randomFrom(t, alnum, 59)},
		KindGitLabToken:       {"glpat-" + randomFrom(t, alnum+"-_", 20)},
		KindAzureClientSecret: {randomFrom(t, alnum, 3) + "8Q~" + randomFrom(t, alnum+"_~.-", 33) + "a"},
		KindJWT: {
			jwt(`{"alg":"RS256","typ":"JWT","kid":"k1"}`, `{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/web:ref:refs/heads/main"}`, randomFrom(t, alnum+"-_", 86)),
		},
	}
}

// embed places v in a line of text of the kind each credential is found in.
func embed(k Kind, v string) string {
	switch k {
	case KindDockerConfigAuth:
		return "{\n\t\"auths\": {\n\t\t\"registry.example.com\": {\n\t\t\t\"auth\": \"" + v + "\"\n\t\t}\n\t}\n}\n"
	case KindPrivateKey:
		return "key: |\n" + v + "\n"
	}
	return "export TOKEN=" + v + " # planted\n"
}

func TestDetectFindsEachKind(t *testing.T) {
	for k, vs := range positives(t) {
		for _, v := range vs {
			text := "first line\n" + embed(k, v)
			ms := detect([]byte(text), nil)
			if len(ms) != 1 {
				t.Errorf("%s: %d matches in %q, want 1", k, len(ms), text)
				continue
			}
			if ms[0].kind != k || text[ms[0].start:ms[0].end] != v {
				t.Errorf("%s: matched %s %q, want the value", k, ms[0].kind, text[ms[0].start:ms[0].end])
			}
		}
	}
}

func TestFindingPositionAndRedaction(t *testing.T) {
	dir := t.TempDir()
	secret := berthSecret(t)
	gh := githubToken(t, "ghp_")
	text := "# é config\nurl: https://x\n  password: \"" + secret + "\"\nghtoken=" + gh + "\n"
	path := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := ScanFiles(t.Context(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 2 {
		t.Fatalf("findings %+v", res.Findings)
	}
	f := res.Findings[0]
	if f.File != path || f.Line != 3 || f.Column != 14 || f.Kind != KindBerthSecret {
		t.Errorf("finding %+v, want %s:3:14 %s", f, path, KindBerthSecret)
	}
	if f.Excerpt != secret[:berth.SecretHintLength]+"…" || f.Secret() != secret || f.Fingerprint != Fingerprint(KindBerthSecret, secret) {
		t.Errorf("excerpt %q, fingerprint %q", f.Excerpt, f.Fingerprint)
	}
	if g := res.Findings[1]; g.Line != 4 || g.Column != 9 || g.Kind != KindGitHubToken {
		t.Errorf("finding %+v, want line 4 column 9", g)
	}
	for _, f := range res.Findings {
		if strings.Contains(f.String(), f.Secret()) || strings.Contains(f.Excerpt, f.Secret()[:len(f.Secret())-4]) {
			t.Errorf("finding %q shows its secret", f)
		}
	}
}

// lookAlikes must never be reported: each is one step away from a real
// credential, or a common string that shares its anchor.
func lookAlikes(t testing.TB) []string {
	secret := berthSecret(t)
	refresh := berthRefreshToken(t)
	badSum := func(s string) string {
		last := s[len(s)-1]
		repl := byte('A')
		if last == 'A' {
			repl = 'B'
		}
		return s[:len(s)-1] + string(repl)
	}
	gh := githubToken(t, "ghp_")
	key := privateKeyPEM(t)
	pub := strings.ReplaceAll(key, "PRIVATE KEY", "PUBLIC KEY")
	enc := base64.StdEncoding.EncodeToString
	return []string{
		// berth: a bad checksum, wrong lengths, glued to a word, non-base62.
		badSum(secret), badSum(refresh), badSum(berthWebhookSecret(t)), "brw_" + secret[4:], badSum(berthPAT(t)), "brp_" + secret[4:],
		secret[:len(secret)-1], secret + "Z", secret + "_x", "x" + secret, "my_" + secret[4:],
		"brt_" + strings.Repeat("0", 38), "brt_" + secret[4:20] + "-" + secret[21:],
		"brt_example_secret_value", "the brt_ prefix", "brr_" + refresh[4:len(refresh)-1],
		// GitHub: a bad checksum, a wrong length, other prefixes.
		badSum(gh), gh[:len(gh)-1], gh + "0", "ghx_" + gh[4:], "ghp_" + strings.Repeat("a", 36),
		"ghp_abcdefghijklmnopqrstuvwxyzABCD012345",
		"github_pat_" + strings.Repeat("x", 22) + "_" + strings.Repeat("y", 59), "github_pat_short",
		// AWS: inside words, placeholders, the documentation example, lower case.
		"MALAKIAN", "AKIAFOOBAR", "XAKIA" + strings.Repeat("B2C3D4E5", 2), "AKIA" + strings.Repeat("B2C3D4E5", 2) + "X",
		"AKIAXXXXXXXXXXXXXXXX", "AKIAIOSFODNN7EXAMPLE", "akia" + strings.Repeat("b2c3d4e5", 2), "ASIA-PACIFIC", "AKIA0123456789012345",
		// Keys: public keys, certificates, a stub without a body, no END.
		pub, "-----BEGIN PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("QUJD", 40) + "\n",
		"-----BEGIN OPENSSH PRIVATE KEY----- (see docs)",
		// JWT look-alikes: base64 with dots that is not a JWT.
		jwt(`{"typ":"JWT"}`, `{"sub":"x"}`, "c2ln"), // no alg
		jwt(`{"alg":"HS256"}`, `not json`, "c2ln"),
		jwt(`{"alg":"HS256"}`, `{"sub":"x"}`, ""), // signed, signature missing
		jwt(`{"alg":"HS256"}`, `{"sub":"x"}`, "c2ln") + ".extra",
		"eyJhbGciOiJIUzI1NiJ9", "eyJ!.abc.def", "YWJj.ZGVm.Z2hp", "eyJub3QganNvbg.eyJ4IjoxfQ.c2ln",
		"aGVsbG8=.d29ybGQ=.Zm9v", "1.2.3", "v1.eyJ.x",
		// GitLab and Azure placeholders and fragments.
		"glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-short", "glpat-<your-token-here>", "Xglpat-" + strings.Repeat("ab12", 5) + "x",
		"Q~", "abc8Q~short", "~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~Q~", "abcdQ~" + strings.Repeat("z1", 17),
		// Docker auths that hold no password.
		`{"auths": {"r.example.com": {"auth": ""}}}`,
		`{"auths": {"r.example.com": {"auth": "` + enc([]byte("useronly")) + `"}}}`,
		`{"auths": {"r.example.com": {"auth": "not base64!"}}}`,
		`{"auths": {"r.example.com": {"auth": "` + enc([]byte(":nouser")) + `"}}}`,
		`{"auths": {"r.example.com": {}}, "credsStore": "desktop"}`,
		`{"auth": "` + enc([]byte("user:pass")) + `"}`, // no auths: not a docker config
	}
}

func TestLookAlikesAreNotReported(t *testing.T) {
	for _, s := range lookAlikes(t) {
		for _, text := range []string{s, "x = " + s + "\n", "\"" + s + "\","} {
			if ms := detect([]byte(text), nil); len(ms) != 0 {
				t.Errorf("%q: reported as %s %q", text, ms[0].kind, text[ms[0].start:ms[0].end])
			}
		}
	}
	// All of them in one file too.
	text := strings.Join(lookAlikes(t), "\n")
	if ms := detect([]byte(text), nil); len(ms) != 0 {
		t.Errorf("corpus: %d matches, first %s %q", len(ms), ms[0].kind, text[ms[0].start:ms[0].end])
	}
}

func TestScanFilesSkips(t *testing.T) {
	dir := t.TempDir()
	secret := berthSecret(t)
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("src/main.go", []byte("package main\nconst s = \""+secret+"\"\n"))
	write(".git/config", []byte(secret))                             // repository internals
	write("image.png", append([]byte("\x89PNG\x00\x00"), secret...)) // binary
	write("big.log", []byte(strings.Repeat("x", 2000)+secret))       // over the limit
	if err := os.Symlink(filepath.Join(dir, "src/main.go"), filepath.Join(dir, "link.go")); err != nil {
		t.Fatal(err)
	}

	res, err := ScanFiles(t.Context(), []string{dir}, Options{MaxFileSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].File != filepath.Join(dir, "src/main.go") {
		t.Errorf("findings %+v, want the one in src/main.go", res.Findings)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != filepath.Join(dir, "big.log") || !strings.Contains(res.Skipped[0].Reason, "larger than") {
		t.Errorf("skipped %+v, want big.log as too large", res.Skipped)
	}
	if res.Stats.Binary != 1 || res.Stats.Files != 1 {
		t.Errorf("stats %+v, want 1 file scanned and 1 binary", res.Stats)
	}

	// A file named on the command line is scanned; a missing one is an error.
	res, err = ScanFiles(t.Context(), []string{filepath.Join(dir, "src/main.go")}, Options{})
	if err != nil || len(res.Findings) != 1 {
		t.Errorf("one file: %+v, %v", res.Findings, err)
	}
	if _, err := ScanFiles(t.Context(), []string{filepath.Join(dir, "missing")}, Options{}); err == nil {
		t.Error("a missing path: no error")
	}
}

// A GitLab token may end in '-', which is in its alphabet; only a trailing
// dot is sentence punctuation.
func TestGitLabTokenEndingInDash(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"TOKEN=glpat-x24ja51TMp1PeefUMte- # planted", "glpat-x24ja51TMp1PeefUMte-"},
		{"Use glpat-x24ja51TMp1PeefUMteQ.", "glpat-x24ja51TMp1PeefUMteQ"},
	} {
		ms := detect([]byte(tc.text), nil)
		if len(ms) != 1 || ms[0].kind != KindGitLabToken || tc.text[ms[0].start:ms[0].end] != tc.want {
			t.Errorf("%q: matches %v, want %q", tc.text, ms, tc.want)
		}
	}
}
