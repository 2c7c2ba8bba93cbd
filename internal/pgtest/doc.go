// Package pgtest gives tests a PostgreSQL of their own: the server that
// development machines and CI run (BERTH_TEST_POSTGRES, else
// postgres://postgres@127.0.0.1:5432/test), one rule for when its absence
// skips a test and when it fails one, and a fresh schema per test, dropped
// when the test ends, so that tests are isolated and may run in parallel.
//
// It is for tests only: nothing outside _test.go files may import it. It
// never touches a schema it did not create, never prints a DSN's password,
// and imports neither internal/postgres nor internal/cli, whose tests use it.
package pgtest
