package rabbitmq

import (
	"strings"
	"testing"
	"time"
)

func TestQueueNames(t *testing.T) {
	topic := strings.Repeat("t", 200)
	a := groupQueue("herald", topic, strings.Repeat("a", 64))
	b := groupQueue("herald", topic, strings.Repeat("a", 63)+"b")
	if len(a) > maxQueueName || len(b) > maxQueueName || a == b {
		t.Errorf("long names: %d and %d bytes, equal %v; want at most %d and different", len(a), len(b), a == b, maxQueueName)
	}
	if r := retryQueue(a, time.Second); len(r) > maxQueueName || r == a {
		t.Errorf("retry queue of a long name: %q", r)
	}
	if got := groupQueue("herald", "user.registered", "email"); got != "herald:user.registered:email" {
		t.Errorf("groupQueue = %q", got)
	}
	if got := retryQueue("herald:t:g", 250*time.Millisecond); got != "herald:t:g:retry-250ms" {
		t.Errorf("retryQueue = %q", got)
	}
}

func TestBucket(t *testing.T) {
	cases := map[time.Duration]time.Duration{
		0: 10 * time.Millisecond, 5 * time.Millisecond: 10 * time.Millisecond, 10 * time.Millisecond: 10 * time.Millisecond,
		11 * time.Millisecond: 25 * time.Millisecond, 100 * time.Millisecond: 100 * time.Millisecond,
		30 * time.Second: time.Minute, 48 * time.Hour: 24 * time.Hour,
	}
	for d, want := range cases {
		if got := bucket(d); got != want {
			t.Errorf("bucket(%v) = %v, want %v", d, got, want)
		}
	}
	bs := retryBuckets()
	for i := 1; i < len(bs); i++ {
		if r := float64(bs[i]) / float64(bs[i-1]); r > 2.5 || r <= 1 {
			t.Errorf("bucket %v follows %v: ratio %.2f, want (1, 2.5]", bs[i], bs[i-1], r)
		}
	}
}
