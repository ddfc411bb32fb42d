// Package httpstats reports the counters of Herald's HTTP broker as
// Prometheus metrics; it is apart from package metrics so that services on
// other brokers do not link the HTTP broker.
package httpstats

import (
	"github.com/prometheus/client_golang/prometheus"

	httpbroker "github.com/herald-dev/herald/broker/http"
)

// Collector reports the counters of an HTTP broker (see
// [httpbroker.Stats]) on each scrape, among them the deliveries its endpoint
// refused, by reason. Make one with [New].
type Collector struct {
	stats   func() httpbroker.Stats
	refused *prometheus.Desc
	spooled *prometheus.Desc
	bad     *prometheus.Desc
}

// New returns a collector of b's counters.
func New(b *httpbroker.Broker) *Collector {
	return &Collector{
		stats:   b.Stats,
		refused: prometheus.NewDesc("herald_http_broker_refused_total", "Deliveries the HTTP broker's endpoint refused and never handed to a handler, by reason.", []string{"reason"}, nil),
		spooled: prometheus.NewDesc("herald_http_broker_spooled", "Deliveries waiting in the HTTP broker's spool, in flight included.", nil, nil),
		bad:     prometheus.NewDesc("herald_http_broker_bad_results_total", "Delivery answers whose checkpoint did not verify.", nil, nil),
	}
}

// Describe implements [prometheus.Collector].
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.refused
	ch <- c.spooled
	ch <- c.bad
}

// Collect implements [prometheus.Collector].
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for reason, n := range map[string]uint64{
		"unsigned": s.RefusedUnsigned, "forged": s.RefusedForged, "stale": s.RefusedStale,
		"replayed": s.RefusedReplayed, "malformed": s.RefusedMalformed, "too_large": s.RefusedTooLarge, "busy": s.RefusedBusy,
	} {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.spooled, prometheus.GaugeValue, float64(s.Spooled))
	ch <- prometheus.MustNewConstMetric(c.bad, prometheus.CounterValue, float64(s.BadResults))
}
