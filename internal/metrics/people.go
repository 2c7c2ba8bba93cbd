package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth"
)

// TokenSource lists people and their personal access tokens.
type TokenSource interface {
	FindPrincipals(ctx context.Context, f berth.PrincipalFilter) ([]berth.Principal, error)
	FindPATs(ctx context.Context, principalID string) ([]berth.PersonalAccessToken, error)
}

// WatchTokens reports, at scrape time, when each personal access token that
// is not revoked expires:
// berth_personal_access_token_expiry_timestamp_seconds{principal, token_id}.
func (m *Metrics) WatchTokens(src TokenSource) {
	m.registry.MustRegister(&tokenExpiryCollector{src: src})
}

type tokenExpiryCollector struct{ src TokenSource }

var tokenExpiryDesc = prometheus.NewDesc("berth_personal_access_token_expiry_timestamp_seconds",
	"When each personal access token that is not revoked expires, as a Unix time.", []string{"principal", "token_id"}, nil)

func (c *tokenExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tokenExpiryDesc }

func (c *tokenExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for p, err := range berth.AllPrincipals(ctx, c.src, berth.PrincipalFilter{Kind: berth.PrincipalUser}) {
		var ts []berth.PersonalAccessToken
		if err == nil {
			ts, err = c.src.FindPATs(ctx, p.ID)
		}
		if err != nil {
			ch <- prometheus.NewInvalidMetric(tokenExpiryDesc, err)
			return
		}
		for _, t := range ts {
			if t.Revoked == nil {
				ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue, float64(t.Expires.Unix()), p.Name, t.ID)
			}
		}
	}
}
