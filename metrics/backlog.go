package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BacklogFunc reports how many rows an outbox holds and when the oldest was
// written; [outbox.Relay.Backlog] is one.
type BacklogFunc func(ctx context.Context) (count int, oldest time.Time, err error)

// ScrapeTimeout bounds the query a collector makes on each scrape.
const ScrapeTimeout = 5 * time.Second

// BacklogCollector reports an outbox's backlog on each scrape. Make one with
// [NewBacklogCollector] and register it.
type BacklogCollector struct {
	backlog BacklogFunc
	count   *prometheus.Desc
	age     *prometheus.Desc
	now     func() time.Time
}

// NewBacklogCollector returns a collector of the backlog of the outbox
// called name (a label, such as the service's name) that f reports.
func NewBacklogCollector(name string, f BacklogFunc) *BacklogCollector {
	labels := prometheus.Labels{"outbox": name}
	return &BacklogCollector{
		backlog: f,
		count:   prometheus.NewDesc("herald_outbox_backlog", "Events written to the outbox and not yet published.", nil, labels),
		age:     prometheus.NewDesc("herald_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox (0 when it is empty).", nil, labels),
		now:     time.Now,
	}
}

// Describe implements [prometheus.Collector].
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.age
}

// Collect implements [prometheus.Collector]: it queries the backlog, bounded
// by [ScrapeTimeout]. A failed query reports an invalid metric, which the
// scrape shows as an error.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	n, oldest, err := c.backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.count, err)
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(0, c.now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
