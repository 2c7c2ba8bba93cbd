package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestCrashDuringConcurrentPushes pushes images concurrently, kills the
// server with SIGKILL after some pushes have completed (others, a streamed
// upload and a half-done chunked upload are in flight), restarts it on the
// same data dir and checks that:
//   - every push that reported success is complete: manifest by tag and by
//     digest, every blob, all digests verified (validate.Image);
//   - a push that failed but is visible anyway is complete too;
//   - no blob is ever served with content that does not match its digest,
//     and a blob whose upload never finished is not served at all;
//   - the half-done upload session survived and can be resumed;
//   - the restarted registry takes new pushes.
func TestCrashDuringConcurrentPushes(t *testing.T) {
	needServer(t)
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	s := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const (
		nImages     = 24
		parallel    = 6
		killAfterOK = 6
	)
	type job struct {
		tag    string
		img    v1.Image
		digest v1.Hash
		err    error
		done   bool
	}
	jobs := make([]*job, nImages)
	for i := range jobs {
		img := randomOCIImage(t, 4, 384<<10)
		// Compute every digest now, so the pushes only do I/O.
		if _, err := img.RawManifest(); err != nil {
			t.Fatal(err)
		}
		jobs[i] = &job{tag: fmt.Sprintf("img-%02d", i), img: img, digest: digestOf(t, img)}
	}
	repo := "e2e/crash"

	// A chunked upload left half done: its first chunk is acknowledged
	// before the crash, the rest is sent after the restart.
	partial := randomBytes(t, 1<<20)
	partialDigest := sha256Digest(partial)
	pushClient := authedClient(t, s, ctx, repo, transport.PushScope)
	partialLoc := startUpload(t, pushClient, s, repo)
	partialLoc = patchChunk(t, pushClient, s, partialLoc, partial[:len(partial)/2], 0)

	// A streamed upload whose body is still arriving when the server dies.
	streamed := randomBytes(t, 4<<20)
	streamedDigest := sha256Digest(streamed)
	streamLoc := startUpload(t, pushClient, s, repo)
	pr, pw := io.Pipe()
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, resolveLoc(s, streamLoc), pr)
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err := pushClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(streamed[:1<<20]); err != nil {
		t.Fatalf("streamed upload: %v", err)
	}

	// Concurrent pushes; kill -9 once killAfterOK of them have succeeded.
	var (
		mu   sync.Mutex
		okN  int
		wg   sync.WaitGroup
		sem  = make(chan struct{}, parallel)
		kill = make(chan struct{})
		once sync.Once
	)
	opts := append(s.remoteOpts(ctx), remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Steps: 1}))
	for _, j := range jobs {
		wg.Add(1)
		go func(j *job) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			select {
			case <-kill:
				j.err = fmt.Errorf("not started: server already killed")
				return
			default:
			}
			err := remote.Write(s.ref(t, repo+":"+j.tag), j.img, opts...)
			mu.Lock()
			defer mu.Unlock()
			j.err, j.done = err, true
			if err == nil {
				okN++
				if okN == killAfterOK {
					once.Do(func() { close(kill) })
				}
			}
		}(j)
	}
	select {
	case <-kill:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d pushes succeeded within 2 minutes\n%s", okN, s.logTail())
	}
	s.kill()
	_ = pw.CloseWithError(fmt.Errorf("server killed"))
	wg.Wait()
	<-streamDone

	var succeeded, failed []*job
	for _, j := range jobs {
		if j.err == nil {
			succeeded = append(succeeded, j)
		} else {
			failed = append(failed, j)
		}
	}
	t.Logf("before the kill: %d pushes succeeded, %d failed or never started", len(succeeded), len(failed))
	if len(failed) == 0 {
		t.Log("note: every push finished before the kill landed; only the two open uploads were in flight")
	}

	s.restart()
	opts = s.remoteOpts(ctx)
	pullClient := authedClient(t, s, ctx, repo, transport.PullScope)

	// Every successful push is intact, by tag and by digest.
	for _, j := range succeeded {
		checkImage(t, s, repo, j.tag, j.digest, opts)
	}
	// A failed push may or may not be visible; if its tag is, it is whole.
	for _, j := range failed {
		desc, err := remote.Head(s.ref(t, repo+":"+j.tag), opts...)
		if err != nil {
			continue
		}
		if desc.Digest != j.digest {
			t.Errorf("%s: tag points at %s, the push was %s", j.tag, desc.Digest, j.digest)
			continue
		}
		checkImage(t, s, repo, j.tag, j.digest, opts)
	}
	// No blob is served with the wrong content, pushed or not.
	for _, j := range jobs {
		m, err := j.img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			checkBlobIfPresent(t, pullClient, s, repo, d.Digest.String(), d.Size)
		}
	}
	// The streamed upload never finished: its blob does not exist.
	if code := blobStatus(t, pullClient, s, repo, streamedDigest); code != http.StatusNotFound {
		t.Errorf("blob of the interrupted streamed upload: HEAD answered %d, want 404", code)
	}

	// The half-done upload session survived the crash and can be finished.
	pushClient = authedClient(t, s, ctx, repo, transport.PushScope)
	t.Run("resume upload after crash", func(t *testing.T) {
		offset, loc := uploadOffset(t, pushClient, s, partialLoc)
		if offset > int64(len(partial)/2) {
			t.Fatalf("upload status says %d bytes received, only %d were sent", offset, len(partial)/2)
		}
		loc = patchChunk(t, pushClient, s, loc, partial[offset:], offset)
		finishUpload(t, pushClient, s, loc, partialDigest)
		checkBlobIfPresent(t, pullClient, s, repo, partialDigest, int64(len(partial)))
		if code := blobStatus(t, pullClient, s, repo, partialDigest); code != http.StatusOK {
			t.Fatalf("resumed blob: HEAD answered %d", code)
		}
	})

	// The restarted registry takes the pushes that failed.
	for _, j := range failed {
		if err := remote.Write(s.ref(t, repo+":"+j.tag), j.img, opts...); err != nil {
			t.Fatalf("re-push %s after restart: %v", j.tag, err)
		}
		checkImage(t, s, repo, j.tag, j.digest, opts)
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkImage pulls repo:tag and repo@digest and verifies every digest.
func checkImage(t *testing.T, s *server, repo, tag string, want v1.Hash, opts []remote.Option) {
	t.Helper()
	for _, r := range []string{repo + ":" + tag, repo + "@" + want.String()} {
		img, err := remote.Image(s.ref(t, r), opts...)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if d := digestOf(t, img); d != want {
			t.Errorf("%s: manifest digest %s, pushed %s", r, d, want)
			continue
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}

func blobURL(s *server, repo, digest string) string {
	return fmt.Sprintf("http://%s/v2/%s/blobs/%s", s.addr, repo, digest)
}

func blobStatus(t testing.TB, c *http.Client, s *server, repo, digest string) int {
	t.Helper()
	resp, err := c.Head(blobURL(s, repo, digest))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkBlobIfPresent GETs a blob; a 404 is fine, a 200 must carry exactly the
// content of the digest.
func checkBlobIfPresent(t testing.TB, c *http.Client, s *server, repo, digest string, size int64) {
	t.Helper()
	resp, err := c.Get(blobURL(s, repo, digest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return
	case http.StatusOK:
	default:
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("GET blob %s: %s %s", digest, resp.Status, b)
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Errorf("GET blob %s: reading body: %v", digest, err)
		return
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest || n != size {
		t.Errorf("GET blob %s served %d bytes hashing to %s, want %d bytes", digest, n, got, size)
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.FormatInt(size, 10) {
		t.Errorf("GET blob %s: Content-Length %s, want %d", digest, cl, size)
	}
}

// resolveLoc turns an upload Location (absolute or relative, possibly naming
// the address the server had before a restart) into a URL on s.
func resolveLoc(s *server, loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	u.Scheme, u.Host = "http", s.addr
	return u.String()
}

func startUpload(t testing.TB, c *http.Client, s *server, repo string) string {
	t.Helper()
	resp, err := c.Post(fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", s.addr, repo), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST upload: %s %s", resp.Status, b)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatal("POST upload: no Location")
	}
	return loc
}

// patchChunk sends b at offset with Content-Range and returns the next Location.
func patchChunk(t testing.TB, c *http.Client, s *server, loc string, b []byte, offset int64) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, resolveLoc(s, loc), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+int64(len(b))-1))
	req.ContentLength = int64(len(b))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("PATCH chunk at %d: %s %s", offset, resp.Status, body)
	}
	if l := resp.Header.Get("Location"); l != "" {
		return l
	}
	return loc
}

// uploadOffset asks for an upload's status and returns how many bytes the
// server holds (from its Range header) and the Location to continue at.
func uploadOffset(t testing.TB, c *http.Client, s *server, loc string) (int64, string) {
	t.Helper()
	resp, err := c.Get(resolveLoc(s, loc))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upload status after restart: %s %s (upload sessions must survive a restart)", resp.Status, body)
	}
	if l := resp.Header.Get("Location"); l != "" {
		loc = l
	}
	rng := resp.Header.Get("Range") // "0-N" (inclusive), absent when empty
	if rng == "" {
		return 0, loc
	}
	_, end, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
	if !ok {
		t.Fatalf("upload status: bad Range %q", rng)
	}
	n, err := strconv.ParseInt(end, 10, 64)
	if err != nil {
		t.Fatalf("upload status: bad Range %q", rng)
	}
	return n + 1, loc
}

func finishUpload(t testing.TB, c *http.Client, s *server, loc, digest string) {
	t.Helper()
	u, err := url.Parse(resolveLoc(s, loc))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT to finish upload: %s %s", resp.Status, body)
	}
}
