package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth/internal/pgtest"
)

// replicaSchema returns a DSN selecting an empty schema of the test's own on
// the PostgreSQL the replicas share, dropped when the test ends.
func replicaSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, "berth_e2e")
}

// withAppName names the replica's database sessions, so that the test can
// tell which replica holds the garbage collection lock.
func withAppName(dsn, name string) string {
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// replicas are two berth serve processes, A and B, on one PostgreSQL schema
// and one blob store, as startReplicas starts them.
type replicas struct {
	a, b *server
	// dsn selects the schema the replicas share.
	dsn string
	// blobs is the folder holding the blob store's files: the shared blob
	// folder, or the bucket's folder on versitygw's posix backend, where an
	// object's LastModified is its file's modification time.
	blobs string
}

// startReplicas starts A, then B, each with --db dsn under its own
// application name, sharing one configuration: a fresh key encryption key,
// garbage collection every second of what is over an hour old (nothing a
// test makes is, until it backdates it), then extra, more YAML. setup, when
// not nil, prepares each data folder before its replica starts. A bootstraps
// the administrator; B must not, and is given A's credentials.
func startReplicas(t *testing.T, dsn, extra string, setup func(data string)) (a, b *server) {
	t.Helper()
	root := t.TempDir()
	dataA, dataB := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{dataA, dataB} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if setup != nil {
			setup(d)
		}
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	cfg := filepath.Join(root, "berth.yaml")
	conf := fmt.Sprintf("key_encryption_key: %s\ngc:\n  interval: 1s\n  grace: 1h\n", base64.StdEncoding.EncodeToString(kek)) + extra
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a = startServerArgs(t, dataA, "--config", cfg, "--db", withAppName(dsn, "berth-a"))
	b = startServerArgs(t, dataB, "--config", cfg, "--db", withAppName(dsn, "berth-b"))
	// A started first and created the admin; its credentials serve on B too.
	if _, err := os.Stat(filepath.Join(dataB, "initial-admin.json")); err == nil {
		t.Fatal("both replicas bootstrapped an admin")
	}
	admin, err := os.ReadFile(filepath.Join(dataA, "initial-admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "initial-admin.json"), admin, 0o600); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestReplicas runs two berth serve processes, A and B, on one PostgreSQL
// schema and one blob folder (local disk standing for a shared filesystem;
// TestReplicasS3 shares an S3 bucket instead), with the same key encryption
// key, and checks that a client may land on either.
func TestReplicas(t *testing.T) {
	needBerth(t)
	dsn := replicaSchema(t)
	const dbPassword = "e2e-db-password"
	served := dsn
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, set := u.User.Password(); !set {
			u.User = url.UserPassword(u.User.Username(), dbPassword)
			served = u.String()
		}
	}
	blobs := filepath.Join(t.TempDir(), "blobs")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		t.Fatal(err)
	}
	a, b := startReplicas(t, served, "", func(data string) {
		if err := os.Symlink(blobs, filepath.Join(data, "storage")); err != nil {
			t.Fatal(err)
		}
	})
	r := replicas{a: a, b: b, dsn: dsn, blobs: blobs}
	// The server trusts loopback, so the DSN's password is ignored by it, and
	// must never be logged by berth.
	if log := a.logAll() + b.logAll(); strings.Contains(log, dbPassword) || !strings.Contains(log, "db=") {
		t.Errorf("the logs show the database password, or do not name the database: %q", grepLine(log, "db="))
	}
	ctx := t.Context()

	img := randomOCIImage(t, 3, 64<<10)
	want := digestOf(t, img)
	t.Run("push through A, pull through B", func(t *testing.T) { replicasPushPull(t, r, img) })

	t.Run("chunked upload split across A and B", func(t *testing.T) {
		body := randomBytes(t, 3<<20)
		d := sha256Digest(body)
		ca := authedClient(t, a, ctx, "team/chunked", transport.PushScope)
		cb := authedClient(t, b, ctx, "team/chunked", transport.PushScope)
		loc := startUpload(t, ca, a, "team/chunked")
		loc = patchChunk(t, ca, a, loc, body[:1<<20], 0)
		loc = patchChunk(t, cb, b, loc, body[1<<20:2<<20], 1<<20)
		if n, _ := uploadOffset(t, ca, a, loc); n != 2<<20 {
			t.Fatalf("A sees %d bytes of the upload, want %d", n, 2<<20)
		}
		loc = patchChunk(t, ca, a, loc, body[2<<20:], 2<<20)
		finishUpload(t, cb, b, loc, d)
		resp, err := ca.Get(blobURL(a, "team/chunked", d))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("GET the blob through A: %s, %d bytes (want %d)", resp.Status, len(got), len(body))
		}
	})

	t.Run("a role revoked through A is refused by B within a second", func(t *testing.T) { replicasRevoke(t, r) })

	t.Run("brute force across A and B: the attacker is refused by both, the client is not", func(t *testing.T) {
		p := newPrincipal(t, a, "ci-attempts", "pull", "team/*")
		// The attacker comes from 127.0.0.2 and the pipeline from 127.0.0.3,
		// so the per-address limit this step exhausts slows neither the
		// pipeline nor the other steps, which come from 127.0.0.1.
		from := func(ip byte) *http.Client {
			return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}).DialContext}}
		}
		attacker, pipeline := from(2), from(3)
		attempt := func(c *http.Client, s *server, user, secret string) (int, string) {
			u := s.tokenURL() + "?" + url.Values{"service": {"berth"}, "scope": {"repository:team/app:pull"}}.Encode()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			req.SetBasicAuth(user, secret)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tr tokenResponse
			_ = json.NewDecoder(resp.Body).Decode(&tr)
			return resp.StatusCode, tr.Reason
		}
		// The limit is 10 failures a minute: 5 through each replica reach
		// it only if the replicas count together. The attacker varies how
		// it names the client (case, name), which changes nothing.
		users := []string{p.clientID, strings.ToUpper(p.clientID), "ci-attempts"}
		for i := range 10 {
			s := a
			if i%2 == 1 {
				s = b
			}
			if status, reason := attempt(attacker, s, users[i%len(users)], mistype(p.secret)); status != http.StatusUnauthorized {
				t.Fatalf("wrong secret %d: %d %s, want 401", i+1, status, reason)
			}
		}
		for _, s := range []*server{a, b} {
			if status, reason := attempt(attacker, s, p.clientID, p.secret); status != http.StatusTooManyRequests || reason != "too_many_attempts" {
				t.Errorf("the right secret from the attacker's address after 5 failures through each replica: %d %q, want 429 too_many_attempts", status, reason)
			}
			if status, reason := attempt(attacker, s, "admin", mistype(p.secret)); status != http.StatusTooManyRequests {
				t.Errorf("another client from the attacker's address: %d %q, want 429", status, reason)
			}
			// The pipeline, from its own address, is never slowed by it.
			if status, reason := attempt(pipeline, s, p.clientID, p.secret); status != http.StatusOK {
				t.Errorf("the pipeline's right secret from a clean address: %d %q, want 200", status, reason)
			}
		}
	})

	t.Run("GC survives the collecting replica being killed", func(t *testing.T) { replicasGCKilled(t, r, want) })
}

// replicasPushPull pushes img to team/app:v1 through A and pulls it through B.
func replicasPushPull(t *testing.T, r replicas, img v1.Image) {
	ctx := t.Context()
	if err := remote.Write(r.a.ref(t, "team/app:v1"), img, r.a.remoteOpts(ctx)...); err != nil {
		t.Fatal(err)
	}
	checkImage(t, r.b, "team/app", "v1", digestOf(t, img), r.b.remoteOpts(ctx))
}

// replicasRevoke checks that a role revoked through A is refused by B within
// a second. team/app must exist.
func replicasRevoke(t *testing.T, r replicas) {
	a, b, ctx := r.a, r.b, t.Context()
	p := newPrincipal(t, a, "ci-revoke", "pull", "team/*")
	status, tr := tokenRequest(t, b.tokenURL(), http.MethodGet, p.clientID, p.secret,
		url.Values{"service": {"berth"}, "scope": {"repository:team/app:pull"}})
	if status != http.StatusOK || tr.Token == "" {
		t.Fatalf("token from B: %d %+v", status, tr)
	}
	tags := func() int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+"/v2/team/app/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+tr.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := tags(); s != http.StatusOK {
		t.Fatalf("B before the revocation: %d", s)
	}
	asAdmin(t, a, "role", "revoke", "--principal", "ci-revoke", "--role", "pull", "--scope", "team/*")
	revoked := time.Now()
	for {
		s := tags()
		if s != http.StatusOK {
			t.Logf("B refused (%d) %v after the revocation through A returned", s, time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("B still serves the revoked principal a second after the revocation through A")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicasGCKilled kills whichever replica is midway through collecting
// garbage, and checks that the other finishes the collection and that
// team/app:v1, whose digest is want, survives it.
func replicasGCKilled(t *testing.T, r replicas, want v1.Hash) {
	a, b, dsn, blobs, ctx := r.a, r.b, r.dsn, r.blobs, t.Context()
	// Garbage: blobs linked to a repository that no manifest references.
	// Enough of them that a collection takes seconds, so that it can be
	// killed midway.
	const garbage = 1500
	digests := pushGarbage(t, a, "team/garbage", garbage)
	if n := filesNaming(t, blobs, digests); n != garbage {
		t.Fatalf("%d of the %d garbage blobs are stored under %s", n, garbage, blobs)
	}
	// Backdate everything past the one-hour grace: the garbage links and
	// bytes, and the image's, which stay because a manifest references
	// them. GC compares a blob's modification time (its object's
	// LastModified on S3) with the grace as well as its links' ages.
	pgtest.Exec(t, dsn, `UPDATE blob_links SET created = created - interval '2 hours'`)
	old := time.Now().Add(-2 * time.Hour)
	if err := filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	links := func() int64 {
		return pgtest.Int(t, dsn, `SELECT count(*) FROM blob_links l JOIN repositories r ON r.id = l.repo_id WHERE r.name = 'team/garbage'`)
	}
	var victim, survivor *server
	deadline := time.Now().Add(30 * time.Second)
	for victim == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no replica was seen midway through collecting within 30s (%d garbage links left)", links())
		}
		holder := pgHolder(t, dsn)
		if n := links(); holder != "" && n > 0 && n < garbage {
			victim, survivor = a, b
			if holder == "berth-b" {
				victim, survivor = b, a
			}
			victim.kill()
			t.Logf("killed %s (SIGKILL) with %d of %d garbage links left", holder, n, garbage)
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		n, left := links(), filesNaming(t, blobs, digests)
		if n == 0 && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the surviving replica did not finish: %d garbage links and %d garbage blobs left after 90s", n, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkImage(t, survivor, "team/app", "v1", want, survivor.remoteOpts(ctx))
}

// pushGarbage uploads n random small blobs to repo through s, monolithically,
// and returns their digests.
func pushGarbage(t *testing.T, s *server, repo string, n int) []string {
	t.Helper()
	c := authedClient(t, s, t.Context(), repo, transport.PushScope)
	digests := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				body := []byte(fmt.Sprintf("garbage %d %x", i, randomBytes(t, 16)))
				digests[i] = sha256Digest(body)
				loc := startUpload(t, c, s, repo)
				u, _ := url.Parse(resolveLoc(s, loc))
				q := u.Query()
				q.Set("digest", digests[i])
				u.RawQuery = q.Encode()
				req, _ := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/octet-stream")
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("PUT garbage blob %d: %s", i, resp.Status)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return digests
}

// pgHolder returns the application_name of the session holding an advisory
// lock in the database (the garbage collection's, in this test), or "".
func pgHolder(t testing.TB, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var name string
	err = conn.QueryRow(ctx, `
		SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		AND l.objid = (hashtextextended(current_schema() || '/gc', 0) & 4294967295)::oid`).Scan(&name)
	if err == pgx.ErrNoRows {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	return name
}

// filesNaming counts the files under dir whose path names one of digests.
func filesNaming(t testing.TB, dir string, digests []string) int {
	t.Helper()
	want := map[string]bool{}
	for _, d := range digests {
		want[strings.TrimPrefix(d, "sha256:")] = true
	}
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			for _, part := range strings.Split(p, string(filepath.Separator)) {
				if want[part] || want[strings.TrimSuffix(part, filepath.Ext(part))] {
					n++
					break
				}
			}
		}
		return nil
	})
	return n
}

func grepLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
