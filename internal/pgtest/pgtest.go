package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultDSN is the PostgreSQL that development machines and CI run.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	reachOnce sync.Once
	reachErr  error
)

// DSN returns the DSN of the test server: BERTH_TEST_POSTGRES, else
// defaultDSN. When the server cannot be reached the test fails if
// BERTH_TEST_POSTGRES is set, CI=1 (or true), or BERTH_E2E=1 (which .ci/run
// sets to turn a missing test dependency into a failure): CI must never skip
// it silently. Otherwise it is skipped, saying why. The server is tried once
// per test binary.
func DSN(t testing.TB) string {
	t.Helper()
	dsn, explicit := os.LookupEnv("BERTH_TEST_POSTGRES")
	if !explicit || dsn == "" {
		dsn, explicit = defaultDSN, false
	}
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reachErr = err
	})
	if reachErr != nil {
		ci := os.Getenv("CI")
		if explicit || ci == "1" || ci == "true" || os.Getenv("BERTH_E2E") == "1" {
			t.Fatalf("PostgreSQL at %s is unreachable (BERTH_TEST_POSTGRES, CI=1 or BERTH_E2E=1 is set, so this fails rather than skips): %v", redact(dsn), reachErr)
		}
		t.Skipf("PostgreSQL at %s is unreachable, skipping (set BERTH_TEST_POSTGRES to a reachable server; CI=1 makes this a failure): %v", redact(dsn), reachErr)
	}
	return dsn
}

var schemaPrefix = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Schema creates an empty schema named prefix_ and twelve random hex
// digits on the server of DSN, drops it when the test ends, and returns a
// DSN selecting it. prefix is lower-case letters, digits and underscores
// (such as "berth_cli"), so that a leftover schema says which tests made it.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	if !schemaPrefix.MatchString(prefix) {
		t.Fatalf("pgtest.Schema: prefix %q is not a lower-case SQL identifier", prefix)
	}
	base := DSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	Exec(t, base, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { Exec(t, base, `DROP SCHEMA `+schema+` CASCADE`) })
	return WithSearchPath(base, schema)
}

// WithSearchPath returns dsn selecting schema, in whichever of the two DSN
// forms (URL or key=value) dsn has. It does not create the schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			panic(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Exec runs one statement on a connection of its own, failing the test if
// it fails.
func Exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := connect(t, ctx, dsn)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Int runs a query returning one integer on a connection of its own,
// failing the test if it fails.
func Int(t testing.TB, dsn, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := connect(t, ctx, dsn)
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func connect(t testing.TB, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(dsn), err)
	}
	return conn
}

// keywordPassword is the password of a key=value DSN, quoted or not.
var keywordPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redact hides the password of a DSN of either form, for messages.
func redact(dsn string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return keywordPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
