package scan

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// vocabulary is what generated files are made of: the words of source code,
// configuration and logs, including strings that share an anchor with a
// credential (snake_case, "-----BEGIN", "eyJ", "AKIA", "Q~", "auths") so the
// verifiers are exercised as on real text.
var vocabulary = strings.Fields(`func return if else for range package import type struct interface
	err nil ctx context.Context string int64 []byte map[string]any := = == != { } ( ) [ ] ; , . :
	client_id client_secret access_token refresh_token github_token user_name max_retries
	http_request_duration_seconds db_conn_pool brt_example glpat- ghp_ AKIAFOO ASIA-PACIFIC
	"-----BEGIN CERTIFICATE-----" eyJ "alg" Q~ "auths": "auth": registry.example.com
	INFO WARN ERROR DEBUG 2026-01-14T10:22:33Z request_id=7f3a9c status=200 latency=12ms
	apiVersion: kind: Deployment metadata: name: spec: containers: image: env: value:
	the a of to and in that is was for on are with as be at by this have from or one had
	Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor 0x1f 42 3.14
	SELECT * FROM users WHERE id = $1; // # /* */ <div class="row"> </div> https://example.com/path?q=1`)

// benchTree writes files of real text (runs of the toolchain's Go sources,
// 4 to 64 KiB each, interleaved with configuration and log lines made from
// vocabulary) under a new directory until they hold about size bytes,
// planting a credential in one file of 200. It returns the directory, the
// bytes written and how many credentials it planted.
func benchTree(b *testing.B, size int64) (string, int64, int) {
	b.Helper()
	corpus := realText(b, 32<<20)
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	planted := []string{berthSecret(b), githubToken(b, "ghp_"), "AKIA" + randomFrom(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
		jwt(`{"alg":"HS256"}`, `{"sub":"ci"}`, randomFrom(b, alnum, 43))}
	var total int64
	var buf bytes.Buffer
	files, plants := 0, 0
	for total < size {
		buf.Reset()
		n := 4<<10 + rng.IntN(60<<10)
		for buf.Len() < n {
			if rng.IntN(4) == 0 {
				for range 1 + rng.IntN(30) {
					w := vocabulary[rng.IntN(len(vocabulary))]
					buf.WriteString(w + " ")
				}
				buf.WriteByte('\n')
				continue
			}
			at := rng.IntN(len(corpus) - 8<<10)
			buf.Write(corpus[at : at+rng.IntN(8<<10)])
		}
		if files%200 == 0 {
			buf.WriteString("\ntoken: " + planted[plants%len(planted)] + "\n")
			plants++
		}
		name := filepath.Join(dir, fmt.Sprintf("d%02d", files%64), fmt.Sprintf("f%05d.txt", files))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(buf.Len())
		files++
	}
	return dir, total, plants
}

// BenchmarkScan scans a generated tree of about 128 MiB of text, read from
// the page cache, with every core.
func BenchmarkScan(b *testing.B) {
	dir, size, plants := benchTree(b, 128<<20)
	b.SetBytes(size)
	for b.Loop() {
		res, err := ScanFiles(b.Context(), []string{dir}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Findings) < plants { // the sources may hold test keys too
			b.Fatalf("%d findings, want at least the %d planted", len(res.Findings), plants)
		}
	}
}

// BenchmarkDetectDense runs the detectors on one core over 16 MiB of text
// unusually dense in anchors (one word in ten shares one with a credential):
// the worst case for the candidate search.
func BenchmarkDetectDense(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for buf.Len() < 16<<20 {
		buf.WriteString(vocabulary[rng.IntN(len(vocabulary))])
		if rng.IntN(12) == 0 {
			buf.WriteByte('\n')
		} else {
			buf.WriteByte(' ')
		}
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	var ms []match
	for b.Loop() {
		ms = detect(data, ms[:0])
	}
}

// realText returns about size bytes of real text: the Go sources of the
// toolchain running the benchmark (code, comments, test data strings).
func realText(b *testing.B, size int) []byte {
	b.Helper()
	var buf bytes.Buffer
	root := filepath.Join(runtime.GOROOT(), "src")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || buf.Len() >= size {
			return filepath.SkipAll
		}
		if d.Type().IsRegular() && strings.HasSuffix(path, ".go") {
			data, err := os.ReadFile(path)
			if err == nil {
				buf.Write(data)
			}
		}
		return nil
	})
	if err != nil || buf.Len() < size/2 {
		b.Skipf("no Go sources to read under %s: %v", root, err)
	}
	return buf.Bytes()
}

// BenchmarkDetectors measures each detector alone over real text.
func BenchmarkDetectors(b *testing.B) {
	data := realText(b, 32<<20)
	for _, d := range []struct {
		name string
		fn   func([]byte, []match) []match
	}{
		{"all", detect}, {"underscore", detectUnderscore}, {"pem", detectPrivateKeys}, {"gitlab", detectGitLab},
		{"azure", detectAzure}, {"jwt", detectJWT}, {"docker", detectDockerAuths},
		{"aws", func(buf []byte, ms []match) []match { return detectAWS(buf, []byte("AKIA"), ms) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var ms []match
			for b.Loop() {
				ms = d.fn(data, ms[:0])
			}
		})
	}
}
