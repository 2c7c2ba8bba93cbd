package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth"
)

var (
	ownerExpiryDesc = prometheus.NewDesc("berth_owner_secret_expiry_timestamp_seconds",
		"When the live secret of an enabled owner of the registry that expires last expires, as a Unix time: after it nobody can manage the registry (berth admin recover restores an owner). 0 when no owner holds a live secret.",
		nil, nil)
	ownerWarningDesc = prometheus.NewDesc("berth_owner_secret_warning_days",
		"The nearest warning threshold (30, 7 or 1 day) that berth_owner_secret_expiry_timestamp_seconds is within; 0 while it is further away; -1 when no owner of the registry holds a live secret.",
		nil, nil)
)

// WatchOwners reports, at scrape time, when owner access to the registry
// lapses (berth.FindOwnerAccess) and whether that is within a warning
// threshold.
func (m *Metrics) WatchOwners(src berth.OwnerStore, now func() time.Time) {
	m.registry.MustRegister(&ownerCollector{src: src, now: now})
}

type ownerCollector struct {
	src berth.OwnerStore
	now func() time.Time
}

func (c *ownerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ownerExpiryDesc
	ch <- ownerWarningDesc
}

func (c *ownerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.now()
	o, err := berth.FindOwnerAccess(ctx, c.src, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(ownerExpiryDesc, err)
		return
	}
	until := 0.0
	if !o.Until.IsZero() {
		until = float64(o.Until.Unix())
	}
	days := float64(o.Warning(now) / (24 * time.Hour))
	if o.Warning(now) < 0 {
		days = -1
	}
	ch <- prometheus.MustNewConstMetric(ownerExpiryDesc, prometheus.GaugeValue, until)
	ch <- prometheus.MustNewConstMetric(ownerWarningDesc, prometheus.GaugeValue, days)
}
