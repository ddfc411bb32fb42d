// Package metrics exposes Herald's messaging as Prometheus metrics, for
// every backend at once: [Metrics.Wrap] decorates any [broker.Broker], so
// no backend has to know about Prometheus.
//
// # What is counted
//
// Per topic (and per queue group on the consuming side, "" for a broadcast
// subscriber):
//
//	herald_broker_published_total{topic}             Publish returned nil
//	herald_broker_publish_errors_total{topic}        Publish returned an error
//	herald_broker_delivered_total{topic,queue}       a handler was called
//	herald_broker_acked_total{topic,queue}           the delivery was acknowledged
//	herald_broker_nacked_total{topic,queue}          the delivery will be retried
//	herald_broker_dead_lettered_total{topic,queue}   the delivery went to the dead-letter topic
//	herald_broker_handler_seconds{topic,queue,outcome}  handler latency
//
// The outcome of a delivery is decided by the same rule as
// [broker.Process] (see [Outcome]), from the handler's error, the
// subscription's options and the message's attempt, so it is what the
// backend does with the message. Two cases differ: a dead letter whose
// publish fails is nacked by the backend but counted here as dead-lettered,
// and a delivery lost to a crash is counted nowhere.
//
// [NewBacklogCollector] reports an outbox's backlog on each scrape:
//
//	herald_outbox_backlog{outbox}                    rows waiting
//	herald_outbox_oldest_age_seconds{outbox}         age of the oldest row (0 when empty)
//
// Package [github.com/herald-dev/herald/metrics/httpstats] reports the deliveries the HTTP broker refused
// (herald_http_broker_refused_total{reason}).
//
// A Metrics value and the brokers it wraps are safe for concurrent use.
package metrics
