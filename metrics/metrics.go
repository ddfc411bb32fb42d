package metrics

import (
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the broker collectors registered on one registry. Make it
// once per registry with [New] and wrap every broker with [Metrics.Wrap].
type Metrics struct {
	published    *prometheus.CounterVec
	publishErrs  *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	acked        *prometheus.CounterVec
	nacked       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	handlerTime  *prometheus.HistogramVec

	mu     sync.Mutex
	groups map[[2]string]bool // durable queue groups subscribed: topic, queue
}

// HandlerBuckets are the bounds, in seconds, of the handler latency
// histogram: from a tenth of a millisecond to half a minute.
var HandlerBuckets = []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New makes the broker collectors and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "herald", Subsystem: "broker", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		published:    counter("published_total", "Messages a Publish call had durably accepted.", "topic"),
		publishErrs:  counter("publish_errors_total", "Publish calls that returned an error.", "topic"),
		delivered:    counter("delivered_total", "Deliveries handed to a handler.", "topic", "queue"),
		acked:        counter("acked_total", "Deliveries acknowledged (the handler succeeded).", "topic", "queue"),
		nacked:       counter("nacked_total", "Deliveries negatively acknowledged, to be delivered again.", "topic", "queue"),
		deadLettered: counter("dead_lettered_total", "Deliveries sent to the dead-letter topic.", "topic", "queue"),
		handlerTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "herald", Subsystem: "broker", Name: "handler_seconds",
			Help: "Time a handler took, by the outcome of the delivery (ack, retry, dead-letter).", Buckets: HandlerBuckets,
		}, []string{"topic", "queue", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.published, m.publishErrs, m.delivered, m.acked, m.nacked, m.deadLettered, m.handlerTime} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the metrics of g in Prometheus' text format, for a
// /metrics route.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
