package pgtest

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, dsn := range []string{
		"postgres://berth:s3cret@127.0.0.1:5432/test?sslmode=disable",
		"postgresql://berth@127.0.0.1/test?password=s3cret",
		"host=127.0.0.1 user=berth password=s3cret dbname=test",
		"host=127.0.0.1 password = 's3cret and more' dbname=test",
		"postgres://berth:s3cret@[::1/test",
	} {
		if got := redact(dsn); strings.Contains(got, "s3cret") {
			t.Errorf("redact(%q) = %q, which shows the password", dsn, got)
		}
	}
	if got := redact("postgres://postgres@127.0.0.1:5432/test"); got != "postgres://postgres@127.0.0.1:5432/test" {
		t.Errorf("redact of a DSN without a password = %q, want it unchanged", got)
	}
}
