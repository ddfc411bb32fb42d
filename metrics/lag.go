package metrics

import (
	"cmp"
	"context"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// LagFunc reports how many messages of topic the queue group has not yet
// acknowledged (waiting to be delivered, or delivered and unacknowledged),
// as the backend counts them. See package
// [github.com/herald-dev/herald/metrics/natslag] for NATS JetStream.
type LagFunc func(ctx context.Context, topic, queue string) (int64, error)

// LagCollector reports the consumer lag of every queue group subscribed
// through the brokers of one [Metrics], on each scrape. Make one with
// [Metrics.LagCollector].
type LagCollector struct {
	m    *Metrics
	lag  LagFunc
	desc *prometheus.Desc
}

// LagCollector returns a collector of the lag f reports for each queue
// group subscribed through m's brokers (herald_broker_consumer_lag{topic,
// queue}). Groups whose lag f cannot read are left out of the scrape.
func (m *Metrics) LagCollector(f LagFunc) *LagCollector {
	return &LagCollector{m: m, lag: f, desc: prometheus.NewDesc("herald_broker_consumer_lag",
		"Messages a queue group has not yet acknowledged, as the backend counts them.", []string{"topic", "queue"}, nil)}
}

// Describe implements [prometheus.Collector].
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements [prometheus.Collector].
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	groups := make([][2]string, 0, len(c.m.groups))
	for g := range c.m.groups {
		groups = append(groups, g)
	}
	c.m.mu.Unlock()
	slices.SortFunc(groups, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	for _, g := range groups {
		n, err := c.lag(ctx, g[0], g[1])
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), g[0], g[1])
	}
}
