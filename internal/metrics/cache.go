package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth"
)

// cacheMetrics are the pull-through cache's counters (oci.CacheMeter).
type cacheMetrics struct {
	hits, misses *prometheus.CounterVec
	errors       *prometheus.CounterVec
	bytes        prometheus.Counter
}

func newCacheMetrics() cacheMetrics {
	return cacheMetrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_cache_hits_total",
			Help: "Manifests and blobs of cache namespaces served from what berth holds, by kind (manifest, blob).",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_cache_misses_total",
			Help: "Manifests and blobs of cache namespaces asked of their upstream because berth did not hold them, by kind (manifest, blob), whether or not the upstream had them.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_cache_upstream_errors_total",
			Help: "Upstream failures met by the pull-through cache, by reason code (upstream_unreachable, upstream_auth_failed, upstream_rate_limited, digest_invalid).",
		}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_cache_upstream_bytes_total",
			Help: "Blob bytes the pull-through cache fetched from upstreams.",
		}),
	}
}

func (c cacheMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.hits, c.misses, c.errors, c.bytes}
}

// CacheHit counts a manifest or blob served from the cache (oci.CacheMeter).
func (m *Metrics) CacheHit(kind string) { m.cache.hits.WithLabelValues(kind).Inc() }

// CacheMiss counts a manifest or blob fetched from an upstream.
func (m *Metrics) CacheMiss(kind string) { m.cache.misses.WithLabelValues(kind).Inc() }

// UpstreamError counts an upstream failure by reason code.
func (m *Metrics) UpstreamError(code berth.Code) { m.cache.errors.WithLabelValues(string(code)).Inc() }

// UpstreamBytes counts blob bytes fetched from upstreams.
func (m *Metrics) UpstreamBytes(n int64) { m.cache.bytes.Add(float64(n)) }

// UpstreamSource lists the pull-through cache's upstreams.
type UpstreamSource interface {
	FindUpstreams(ctx context.Context) ([]berth.Upstream, error)
}

// WatchUpstreams reports, at scrape time, when each upstream credential
// with a recorded expiry expires:
// berth_upstream_credential_expiry_timestamp_seconds{upstream}.
func (m *Metrics) WatchUpstreams(src UpstreamSource) {
	m.registry.MustRegister(&upstreamExpiryCollector{src: src})
}

type upstreamExpiryCollector struct{ src UpstreamSource }

var upstreamExpiryDesc = prometheus.NewDesc("berth_upstream_credential_expiry_timestamp_seconds",
	"When each upstream registry credential with a recorded expiry (berth upstream create --expires-at) expires, as a Unix time.", []string{"upstream"}, nil)

func (c *upstreamExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- upstreamExpiryDesc }

func (c *upstreamExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ups, err := c.src.FindUpstreams(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(upstreamExpiryDesc, err)
		return
	}
	for _, u := range ups {
		if u.ExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(upstreamExpiryDesc, prometheus.GaugeValue, float64(u.ExpiresAt.Unix()), u.Name)
		}
	}
}
