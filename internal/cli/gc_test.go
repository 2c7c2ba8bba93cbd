package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/disk"
)

type gcOutput struct {
	DryRun      *bool        `json:"dry_run"`
	Links       []api.GCLink `json:"links"`
	Blobs       []api.GCItem `json:"blobs"`
	Uploads     []api.GCItem `json:"uploads"`
	BlobBytes   *int64       `json:"blob_bytes"`
	UploadBytes *int64       `json:"upload_bytes"`
}

// runGC runs `berth gc --data DIR -o json args…`, which must succeed, and decodes its report.
func runGC(t *testing.T, dir string, args ...string) gcOutput {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append([]string{"gc", "--data", dir, "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("gc %v exited %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	var out gcOutput
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("gc -o json printed no report: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("gc -o json printed more than one document:\n%s", stdout)
	}
	if out.DryRun == nil || out.BlobBytes == nil || out.UploadBytes == nil || out.Links == nil || out.Blobs == nil || out.Uploads == nil {
		t.Fatalf("gc report misses fields (lists must be [], not null): %s", stdout)
	}
	return out
}

// pushOrphan pushes blob to repo in one monolithic request on a fresh serve of
// dir, and references it from no manifest.
func pushOrphan(t *testing.T, dir, repo string, blob []byte) {
	t.Helper()
	s := startServe(t, dir)
	resp, body := s.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(blob),
		map[string]string{"Content-Type": "application/octet-stream"}, blob)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic push = %d %s", resp.StatusCode, body)
	}
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}
}

// blobStatus serves dir once and returns the status of GET repo's blob, and its body.
func blobStatus(t *testing.T, dir, repo string, blob []byte) (int, []byte) {
	t.Helper()
	s := startServe(t, dir)
	resp, body := s.do(t, "GET", "/v2/"+repo+"/blobs/"+sha256Digest(blob), nil, nil)
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}
	return resp.StatusCode, body
}

func TestGCUnreferencedBlob(t *testing.T) {
	dir := t.TempDir()
	const repo = "gc/orphan"
	blob := bytes.Repeat([]byte("orphan layer "), 777)
	digest := sha256Digest(blob)
	pushOrphan(t, dir, repo, blob)

	// With the default grace of a day, a blob pushed a moment ago is kept.
	if out := runGC(t, dir); len(out.Links) != 0 || len(out.Blobs) != 0 || *out.BlobBytes != 0 || *out.DryRun {
		t.Fatalf("gc with the default grace removed fresh content: %+v", out)
	}

	// A dry run with no grace lists the link and the blob, with their sizes…
	out := runGC(t, dir, "--dry-run", "--grace", "0s")
	if !*out.DryRun {
		t.Error("dry_run is false in a dry run")
	}
	if len(out.Blobs) != 1 || out.Blobs[0].ID != digest || out.Blobs[0].Size != int64(len(blob)) {
		t.Fatalf("dry run blobs = %+v, want [{%s %d}]", out.Blobs, digest, len(blob))
	}
	if *out.BlobBytes != int64(len(blob)) {
		t.Errorf("blob_bytes = %d, want %d", *out.BlobBytes, len(blob))
	}
	if len(out.Links) != 1 || out.Links[0] != (api.GCLink{Repository: repo, Digest: digest, Size: int64(len(blob))}) {
		t.Errorf("dry run links = %+v, want one link %s@%s", out.Links, repo, digest)
	}
	// …and removes nothing: the blob is still served.
	if status, body := blobStatus(t, dir, repo, blob); status != http.StatusOK || !bytes.Equal(body, blob) {
		t.Fatalf("after a dry run GET blob = %d (%d bytes), want 200 with the blob", status, len(body))
	}

	// The real run removes it.
	out = runGC(t, dir, "--grace", "0s")
	if *out.DryRun {
		t.Error("dry_run is true in a real run")
	}
	if len(out.Blobs) != 1 || out.Blobs[0].ID != digest || out.Blobs[0].Size != int64(len(blob)) || len(out.Links) != 1 {
		t.Fatalf("gc removed links %+v blobs %+v, want the one orphan", out.Links, out.Blobs)
	}
	if status, _ := blobStatus(t, dir, repo, blob); status != http.StatusNotFound {
		t.Fatalf("after gc GET blob = %d, want 404", status)
	}
	// Nothing is left for a second run.
	if out := runGC(t, dir, "--grace", "0s"); len(out.Links)+len(out.Blobs)+len(out.Uploads) != 0 {
		t.Errorf("second gc found more: %+v", out)
	}
}

func TestGCAbandonedUpload(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	resp, body := s.do(t, "POST", "/v2/gc/upload/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	chunk := []byte("half a layer")
	if resp, body = s.do(t, "PATCH", loc, map[string]string{"Content-Type": "application/octet-stream"}, chunk); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH = %d %s", resp.StatusCode, body)
	}
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}

	if out := runGC(t, dir); len(out.Uploads) != 0 {
		t.Fatalf("gc with the default grace removed a fresh upload: %+v", out.Uploads)
	}
	out := runGC(t, dir, "--grace", "0s")
	if len(out.Uploads) != 1 || out.Uploads[0].Size != int64(len(chunk)) || *out.UploadBytes != int64(len(chunk)) {
		t.Fatalf("gc uploads = %+v (upload_bytes %d), want the one %d-byte upload", out.Uploads, *out.UploadBytes, len(chunk))
	}
	if !strings.HasSuffix(loc, "/"+out.Uploads[0].ID) {
		t.Errorf("gc removed upload %s, want the one at %s", out.Uploads[0].ID, loc)
	}

	s = startServe(t, dir)
	if resp, _ := s.do(t, "GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("upload status after gc = %d, want 404", resp.StatusCode)
	}
}

func TestGCRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"unknown key", "gcc:\n  grace: 1h\n"},
		{"negative grace", "gc:\n  grace: -1h\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, tc.yaml)
			code, stdout, _ := runCLI(t, nil, "gc", "--data", t.TempDir(), "--config", cfg, "-o", "json")
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if got := jsonErrorCode(t, stdout); got != "invalid" {
				t.Errorf("code = %q, want invalid", got)
			}
		})
	}
	t.Run("BERTH_CONFIG", func(t *testing.T) {
		cfg := writeConfig(t, "nope: 1\n")
		code, stdout, _ := runCLI(t, map[string]string{"BERTH_CONFIG": cfg}, "-o", "json", "gc", "--data", t.TempDir())
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if got := jsonErrorCode(t, stdout); got != "invalid" {
			t.Errorf("code = %q, want invalid", got)
		}
	})
	t.Run("negative --grace", func(t *testing.T) {
		code, stdout, _ := runCLI(t, nil, "gc", "--data", t.TempDir(), "--grace", "-1s", "-o", "json")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if got := jsonErrorCode(t, stdout); got != "invalid" {
			t.Errorf("code = %q, want invalid", got)
		}
	})
	t.Run("text output", func(t *testing.T) {
		cfg := writeConfig(t, "gcc: {}\n")
		code, stdout, stderr := runCLI(t, nil, "gc", "--data", t.TempDir(), "--config", cfg)
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if stdout != "" {
			t.Errorf("an error in text mode printed on stdout: %q", stdout)
		}
		if !strings.Contains(stderr, "[invalid]") {
			t.Errorf("stderr %q does not show the reason code [invalid]", stderr)
		}
	})
}

// TestServeScheduledGC: serve collects garbage on its own schedule, and stops
// its collector quietly before it returns. The grace is an hour; the test
// moves serve's clock past it once the push is done, rather than waiting.
func TestServeScheduledGC(t *testing.T) {
	offset := moveServeClock(t)
	dir := t.TempDir()
	cfg := writeConfig(t, "log:\n  format: json\ngc:\n  interval: 1ms\n  grace: 1h\n")
	s := startServe(t, dir, "--config", cfg)
	blob := []byte("collected by the schedule")
	digest := sha256Digest(blob)
	resp, body := s.do(t, "POST", "/v2/gc/scheduled/blobs/uploads/?digest="+digest,
		map[string]string{"Content-Type": "application/octet-stream"}, blob)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push = %d %s\nstderr:\n%s", resp.StatusCode, body, s.stderr.String())
	}
	// Within the grace the orphan stays: once a collection begun after the
	// push has run (two done: the first may have begun before), it is still
	// there.
	collections := func() int { return strings.Count(s.stderr.String(), `"msg":"garbage collection done"`) }
	for after, deadline := collections(), time.Now().Add(30*time.Second); collections() < after+2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled collection ran within 30 s")
		}
	}
	if resp, _ := s.do(t, "GET", "/v2/gc/scheduled/blobs/"+digest, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the orphan was collected within its grace: %d", resp.StatusCode)
	}
	offset.Store(int64(2 * time.Hour))

	// The schedule runs on its own: wait for what a client sees.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, _ := s.do(t, "GET", "/v2/gc/scheduled/blobs/"+digest, nil, nil)
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled gc did not remove an orphan blob past its grace within 30 s (GET = %d)", resp.StatusCode)
		}
		<-tick.C
	}
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve returned %d", code)
	}
	// Stopping while a collection runs is not a failure worth an error record.
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["level"] == "ERROR" {
			t.Errorf("error logged: %s", line)
		}
	}
}

// TestGCBesideServe: berth gc run beside berth serve on one data folder waits
// for the server's commit of a digest, through the file locks they share,
// before it deletes the bytes. The locker here stands for the server's.
func TestGCBesideServe(t *testing.T) {
	dir := t.TempDir()
	const repo = "gc/beside"
	blob := bytes.Repeat([]byte("pushed again "), 501)
	d := berth.Digest(sha256Digest(blob))
	pushOrphan(t, dir, repo, blob)

	serveLocks, err := disk.NewCommitLocker(filepath.Join(dir, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := serveLocks.LockShared(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runCLI(t, nil, "gc", "--data", dir, "--grace", "0s", "-o", "json")
		done <- result{code, stdout, stderr}
	}()
	select {
	case r := <-done:
		t.Fatalf("gc deleted a blob the server was committing: exit %d, %s%s", r.code, r.stdout, r.stderr)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	r := <-done
	var out gcOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); r.code != 0 || err != nil {
		t.Fatalf("gc after the commit: exit %d, %v, %s", r.code, err, r.stderr)
	}
	if len(out.Blobs) != 1 || out.Blobs[0].ID != d.String() {
		t.Fatalf("gc after the commit removed %+v, want %s", out.Blobs, d)
	}
}
