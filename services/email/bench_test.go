package email_test

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkWelcomeMail measures a burst: event → mail in the mailbox on broker/mem,
// the SMTP sink (a fsync per mail) and SQLite sent-mail records, 8 mails at
// a time. It reports mails/s and the p50/p99 latency from publishing an
// event to its mail being stored.
func BenchmarkWelcomeMail(b *testing.B) {
	e := newEnv(b, envOpts{concurrency: 8})
	published := map[string]time.Time{}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		u := user(i)
		published[u.Email] = time.Now()
		e.publish(u)
	}
	e.waitMails(b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	var lat []time.Duration
	for _, m := range e.mails() {
		lat = append(lat, m.Received.Sub(published[m.Rcpt[0]]))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "mails/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

// BenchmarkWelcomeMailLatency publishes one event at a time and waits for
// its mail: the latency a single registration sees, without a queue.
func BenchmarkWelcomeMailLatency(b *testing.B) {
	e := newEnv(b, envOpts{concurrency: 8})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		e.publish(user(i))
		for e.sink.Accepted() < i+1 {
			time.Sleep(100 * time.Microsecond) // polling interval
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
