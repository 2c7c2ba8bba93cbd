package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth"
)

// Metrics holds berth's collectors in their own registry.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	tokens    *prometheus.CounterVec

	uploadReceived prometheus.Counter
	blobWritten    prometheus.Counter
	blobRead       prometheus.Counter

	gcRuns        *prometheus.CounterVec
	gcBlobs       prometheus.Counter
	gcUploads     prometheus.Counter
	gcBytes       prometheus.Counter
	gcLastRun     prometheus.Gauge
	gcLastSuccess prometheus.Gauge

	cache cacheMetrics
}

// SecretSource lists principals and their secrets for the expiry gauge.
type SecretSource interface {
	FindPrincipals(ctx context.Context, f berth.PrincipalFilter) ([]berth.Principal, error)
	FindSecrets(ctx context.Context, principalID string) ([]berth.Secret, error)
}

// New returns the metrics of one server. secrets, when not nil, feeds
// berth_secret_expiry_timestamp_seconds at scrape time.
func New(secrets SecretSource) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total",
			Help: "HTTP requests answered, by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_auth_decisions_total",
			Help: "Authentication and authorization decisions, by audit action, result and reason code.",
		}, []string{"action", "result", "reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_tokens_issued_total",
			Help: "Access tokens issued, by grant type.",
		}, []string{"grant_type"}),
		uploadReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_upload_bytes_received_total",
			Help: "Bytes received into blob uploads (chunks and monolithic pushes), whether or not they became a blob.",
		}),
		blobWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_blob_bytes_written_total",
			Help: "Bytes of blobs committed to the blob store by pushes.",
		}),
		blobRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_blob_bytes_read_total",
			Help: "Blob bytes sent to clients by pulls (ranges count what they sent).",
		}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_gc_runs_total",
			Help: "Scheduled garbage collections finished, by result (success or failure).",
		}, []string{"result"}),
		gcBlobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_gc_deleted_blobs_total",
			Help: "Blobs garbage collection deleted.",
		}),
		gcUploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_gc_deleted_uploads_total",
			Help: "Abandoned uploads garbage collection deleted.",
		}),
		gcBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_gc_freed_bytes_total",
			Help: "Bytes of blobs and uploads garbage collection deleted.",
		}),
		gcLastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_gc_last_run_timestamp_seconds",
			Help: "When the last garbage collection finished, successful or not, as a Unix time; 0 before the first.",
		}),
		gcLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_gc_last_success_timestamp_seconds",
			Help: "When the last successful garbage collection finished, as a Unix time; 0 before the first.",
		}),
	}
	m.cache = newCacheMetrics()
	m.registry.MustRegister(m.cache.collectors()...)
	// Both results exist from the start, so that increase() and absent-run
	// alerts work before the first collection.
	m.gcRuns.WithLabelValues(gcSuccess)
	m.gcRuns.WithLabelValues(gcFailure)
	m.registry.MustRegister(m.requests, m.latency, m.decisions, m.tokens,
		m.uploadReceived, m.blobWritten, m.blobRead,
		m.gcRuns, m.gcBlobs, m.gcUploads, m.gcBytes, m.gcLastRun, m.gcLastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if secrets != nil {
		m.registry.MustRegister(&expiryCollector{src: secrets})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveRequest counts one answered request. The route is a coarse name of
// the endpoint (never the repository, which would make a series per name).
func (m *Metrics) ObserveRequest(method, path string, status int, d time.Duration) {
	route := Route(path)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// UploadBytesReceived counts bytes that arrived into uploads (oci.Meter).
func (m *Metrics) UploadBytesReceived(n int64) { m.uploadReceived.Add(float64(n)) }

// BlobBytesWritten counts bytes of blobs committed by pushes (oci.Meter).
func (m *Metrics) BlobBytesWritten(n int64) { m.blobWritten.Add(float64(n)) }

// BlobBytesRead counts blob bytes sent by pulls (oci.Meter).
func (m *Metrics) BlobBytesRead(n int64) { m.blobRead.Add(float64(n)) }

const (
	gcSuccess = "success"
	gcFailure = "failure"
)

// ObserveGC counts a garbage collection that finished at end: what it
// removed (a failed run may have removed part) and its result. A run stopped
// by shutdown is not a failure; the caller does not report it.
func (m *Metrics) ObserveGC(end time.Time, rep berth.GCReport, err error) {
	m.gcBlobs.Add(float64(len(rep.Blobs)))
	m.gcUploads.Add(float64(len(rep.Uploads)))
	m.gcBytes.Add(float64(rep.BlobBytes + rep.UploadBytes))
	m.gcLastRun.Set(float64(end.UnixNano()) / 1e9)
	if err != nil {
		m.gcRuns.WithLabelValues(gcFailure).Inc()
		return
	}
	m.gcRuns.WithLabelValues(gcSuccess).Inc()
	m.gcLastSuccess.Set(float64(end.UnixNano()) / 1e9)
}

// Route names the endpoint family of a path for metric labels.
func Route(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "v2_base"
	case path == "/v2/_catalog":
		return "v2_catalog"
	case strings.HasPrefix(path, "/v2/"):
		switch {
		case strings.Contains(path, "/blobs/uploads/") || strings.HasSuffix(path, "/blobs/uploads"):
			return "v2_upload"
		case strings.Contains(path, "/manifests/"):
			return "v2_manifest"
		case strings.Contains(path, "/blobs/"):
			return "v2_blob"
		case strings.HasSuffix(path, "/tags/list"):
			return "v2_tags"
		case strings.Contains(path, "/referrers/"):
			return "v2_referrers"
		}
		return "v2_other"
	case path == "/oauth2/token":
		return "token"
	case strings.HasPrefix(path, "/api/v1/"):
		return "api"
	case path == "/healthz", path == "/metrics", path == "/oauth2/jwks", path == "/.well-known/openid-configuration":
		return strings.TrimPrefix(path, "/")
	}
	return "other"
}

// Recorder counts the decisions of audit events before passing them on to
// next, the audit writer.
func (m *Metrics) Recorder(next berth.AuditRecorder) berth.AuditRecorder {
	return recorder{m: m, next: next}
}

type recorder struct {
	m    *Metrics
	next berth.AuditRecorder
}

func (r recorder) Record(e berth.AuditEvent) {
	r.m.decisions.WithLabelValues(string(e.Action), string(e.Result), string(e.Reason)).Inc()
	if e.Action == berth.AuditAuthToken && e.Result == berth.AuditAllowed {
		r.m.tokens.WithLabelValues(e.Detail["grant_type"]).Inc()
	}
	r.next.Record(e)
}

// expiryCollector reports when each live secret expires, read at scrape time.
type expiryCollector struct{ src SecretSource }

var expiryDesc = prometheus.NewDesc("berth_secret_expiry_timestamp_seconds",
	"When each client secret that is not removed expires, as a Unix time.", []string{"principal", "secret_id"}, nil)

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for p, err := range berth.AllPrincipals(ctx, c.src, berth.PrincipalFilter{}) {
		var secrets []berth.Secret
		if err == nil {
			secrets, err = c.src.FindSecrets(ctx, p.ID)
		}
		if err != nil {
			ch <- prometheus.NewInvalidMetric(expiryDesc, err)
			return
		}
		for _, s := range secrets {
			if s.Revoked == nil {
				ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(s.Expires.Unix()), p.Name, s.ID)
			}
		}
	}
}

// Guard decides who may read the metrics: they name principals and secret ids.
type Guard interface {
	AuthenticateRequest(r *http.Request) (*berth.Caller, error)
	// Authorize returns nil when caller may do action on typ:name; Protected
	// asks for registry:metrics:pull.
	Authorize(ctx context.Context, c *berth.Caller, typ, name, action string) error
}

// Protected serves the metrics to callers whose roles allow listing the whole
// registry (the catalog or owner role on registry) and, when they present an
// access token, whose token was issued for registry:metrics:pull; it answers
// others 401 or 403 with the reason in a plain-text body, which scrapers log.
// Credentials in the query string are refused, never used.
func (m *Metrics) Protected(g Guard) http.Handler {
	h := m.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c *berth.Caller
		err := berth.RefuseQueryCredential(r.URL.Query())
		if err == nil {
			c, err = g.AuthenticateRequest(r)
		}
		if err == nil {
			err = g.Authorize(r.Context(), c, berth.ResourceRegistry, berth.ResourceMetrics, berth.DockerActionPull)
		}
		if err != nil {
			e := berth.AsError(err)
			if e == nil {
				e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", berth.RequestID(r.Context()))
			}
			status := berth.LookupCode(e.Code).Status
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth metrics"`)
			}
			http.Error(w, string(e.Code)+": "+e.Message+"\nTry: "+e.Hint, status)
			return
		}
		h.ServeHTTP(w, r)
	})
}
