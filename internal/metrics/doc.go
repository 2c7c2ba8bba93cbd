// Package metrics exposes berth's Prometheus metrics on /metrics: requests by
// route, method and status with their latency, authentication and
// authorization results by reason code, tokens issued by grant type, and the
// expiry time of every client secret, so operators can alert on expiry from
// Prometheus alone.
//
// It observes; it never decides. Decisions reach it as the audit events the
// handlers already emit (Recorder decorates the audit writer), and secret
// expiries are read from the store at scrape time.
package metrics
