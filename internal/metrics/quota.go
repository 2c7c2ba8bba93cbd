package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth"
)

var (
	quotaUsageDesc = prometheus.NewDesc("berth_quota_usage_bytes",
		"The bytes of the distinct blobs the repositories of a quota's scope hold, each counted once.",
		[]string{"scope"}, nil)
	quotaLimitDesc = prometheus.NewDesc("berth_quota_limit_bytes",
		"A quota's --max-size; 0 when it bounds only repositories.",
		[]string{"scope"}, nil)
	quotaReposDesc = prometheus.NewDesc("berth_quota_repositories",
		"How many repositories a quota's scope holds.",
		[]string{"scope"}, nil)
)

// QuotaSource is what WatchQuotas reads.
type QuotaSource interface {
	FindQuotas(ctx context.Context) ([]berth.Quota, error)
	QuotaUsage(ctx context.Context, scope berth.Scope) (berth.QuotaUsage, error)
}

// WatchQuotas reports, at scrape time, each quota's limit and usage.
func (m *Metrics) WatchQuotas(src QuotaSource) {
	m.registry.MustRegister(&quotaCollector{src: src})
}

type quotaCollector struct{ src QuotaSource }

func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quotaUsageDesc
	ch <- quotaLimitDesc
	ch <- quotaReposDesc
}

func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	quotas, err := c.src.FindQuotas(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(quotaUsageDesc, err)
		return
	}
	for _, q := range quotas {
		u, err := c.src.QuotaUsage(ctx, q.Scope)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(quotaUsageDesc, err)
			return
		}
		scope := q.Scope.String()
		ch <- prometheus.MustNewConstMetric(quotaUsageDesc, prometheus.GaugeValue, float64(u.Bytes), scope)
		ch <- prometheus.MustNewConstMetric(quotaLimitDesc, prometheus.GaugeValue, float64(q.MaxSize), scope)
		ch <- prometheus.MustNewConstMetric(quotaReposDesc, prometheus.GaugeValue, float64(u.Repositories), scope)
	}
}
