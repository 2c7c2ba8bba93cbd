package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServeLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	s := startServe(t, dir)

	resp, body := s.do(t, "GET", "/v2/", map[string]string{"X-Request-Id": "lifecycle-1"}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d %s", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version = %q, want registry/2.0", v)
	}
	if v := resp.Header.Get("X-Request-Id"); v != "lifecycle-1" {
		t.Errorf("X-Request-Id = %q, want the one sent back", v)
	}
	resp, _ = s.do(t, "GET", "/healthz", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}
	healthID := resp.Header.Get("X-Request-Id")
	if healthID == "" {
		t.Fatal("no X-Request-Id generated for a request without one")
	}

	// The client keeps its connection alive and idle: shutdown must not wait for it.
	s.cancel()
	select {
	case code := <-s.done:
		s.code, s.exited = code, true
	case <-time.After(2 * time.Second):
		t.Fatalf("Run did not return within 2 s of cancellation; stderr:\n%s", s.stderr.String())
	}
	if s.code != 0 {
		t.Fatalf("Run returned %d after a graceful stop; stderr:\n%s", s.code, s.stderr.String())
	}

	logs := s.stderr.String()
	for _, want := range []struct{ path, id string }{{"/v2/", "lifecycle-1"}, {"/healthz", healthID}} {
		re := regexp.MustCompile(`(?m)^.*\bpath=` + regexp.QuoteMeta(want.path) + `\s.*\brequest_id=` + regexp.QuoteMeta(want.id) + `(\s|$)`)
		if !re.MatchString(logs) {
			t.Errorf("no request log line for %s with request_id=%s on stderr:\n%s", want.path, want.id, logs)
		}
	}
}

func TestServeJSONLogs(t *testing.T) {
	cfg := writeConfig(t, "log:\n  format: json\n")
	s := startServe(t, t.TempDir(), "--config", cfg)
	resp, _ := s.do(t, "GET", "/v2/", map[string]string{"X-Request-Id": "json-log-1"}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d", resp.StatusCode)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("Run returned %d", code)
	}

	found := false
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		if rec["path"] == "/v2/" && rec["status"] != nil {
			found = true
			if rec["request_id"] != "json-log-1" {
				t.Errorf("request record %v has request_id %v, want json-log-1", rec, rec["request_id"])
			}
		}
	}
	if !found {
		t.Errorf("no request record for /v2/ in:\n%s", s.stderr.String())
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	cfg := writeConfig(t, "max_manifest_size: 1024\n")
	code, stdout, stderr := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--config", cfg, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	if got := jsonErrorCode(t, stdout); got != "invalid" {
		t.Errorf("code = %q, want invalid", got)
	}
}

func TestServeRefusesBusyAddress(t *testing.T) {
	s := startServe(t, t.TempDir())
	addr := strings.TrimPrefix(s.url, "http://")
	code, _, stderr := runCLI(t, nil, "serve", "--addr", addr, "--data", t.TempDir())
	if code != 1 {
		t.Fatalf("second serve on %s exited %d, want 1; stderr: %s", addr, code, stderr)
	}
}

func sha256Digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// TestServeUploadSurvivesRestart starts a chunked upload, restarts serve on the
// same data folder, then resumes and completes the upload.
func TestServeUploadSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := bytes.Repeat([]byte("berth-chunk-one/"), 4096) // 64 KiB
	second := bytes.Repeat([]byte("and-the-rest.."), 1000)  // 14000 bytes
	blob := append(append([]byte{}, first...), second...)
	digest := sha256Digest(blob)
	const repo = "restart/app"

	s := startServe(t, dir)
	resp, body := s.do(t, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
		t.Fatalf("Location = %q", loc)
	}
	resp, body = s.do(t, "PATCH", loc, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("0-%d", len(first)-1),
	}, first)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH first chunk = %d %s", resp.StatusCode, body)
	}
	if want := fmt.Sprintf("0-%d", len(first)-1); resp.Header.Get("Range") != want {
		t.Fatalf("Range after first chunk = %q, want %q", resp.Header.Get("Range"), want)
	}
	s.client.CloseIdleConnections()
	if code := s.stop(t); code != 0 {
		t.Fatalf("first serve returned %d; stderr:\n%s", code, s.stderr.String())
	}

	s = startServe(t, dir)
	resp, body = s.do(t, "GET", loc, nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload status after restart = %d %s", resp.StatusCode, body)
	}
	if want := fmt.Sprintf("0-%d", len(first)-1); resp.Header.Get("Range") != want {
		t.Fatalf("Range after restart = %q, want %q", resp.Header.Get("Range"), want)
	}
	resp, body = s.do(t, "PATCH", loc, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", len(first), len(blob)-1),
	}, second)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH second chunk after restart = %d %s", resp.StatusCode, body)
	}
	resp, body = s.do(t, "PUT", resp.Header.Get("Location")+"?digest="+digest, nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT closing upload = %d %s", resp.StatusCode, body)
	}
	resp, body = s.do(t, "GET", "/v2/"+repo+"/blobs/"+digest, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob = %d %s", resp.StatusCode, body)
	}
	if !bytes.Equal(body, blob) {
		t.Fatalf("GET blob returned %d bytes (digest %s), want the %d bytes pushed", len(body), sha256Digest(body), len(blob))
	}
	if resp.Header.Get("Docker-Content-Digest") != digest {
		t.Errorf("Docker-Content-Digest = %q, want %q", resp.Header.Get("Docker-Content-Digest"), digest)
	}
}

// jsonErrorCode decodes stdout as exactly one {"error":{"code":…,"message":…}}
// document and returns its code.
func jsonErrorCode(t *testing.T, stdout string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	if doc.Error == nil {
		t.Fatalf("no \"error\" object in %s", stdout)
	}
	if doc.Error.Message == "" {
		t.Errorf("error without a message: %s", stdout)
	}
	return doc.Error.Code
}
