// Package metrics exposes berth's Prometheus metrics on /metrics: requests by
// route, method and status with their latency, authentication and
// authorization results by reason code, tokens issued by grant type, blob and
// upload bytes, garbage collection runs, and the expiry time of every client
// secret, so operators can alert on expiry from Prometheus alone.
//
// It observes; it never decides. Decisions reach it as the audit events the
// handlers already emit (Recorder decorates the audit writer), bytes as the
// oci handler's Meter, collections as the scheduler reports them (ObserveGC),
// and secret expiries are read from the store at scrape time, so a secret
// added or removed shows on the next scrape with no refresh loop to run.
package metrics
