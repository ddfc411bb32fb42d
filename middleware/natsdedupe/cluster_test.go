package natsdedupe_test

import (
	"testing"

	"github.com/herald-dev/herald/broker/nats/natsserver/natsservertest"
	"github.com/herald-dev/herald/middleware"
	"github.com/herald-dev/herald/middleware/dedupetest"
	"github.com/herald-dev/herald/middleware/natsdedupe"
)

// TestConformanceCluster runs the store suite on a bucket with three
// replicas, each store connected to another server than the one before,
// as email replicas spread over a cluster would be. With direct gets
// (kv.Get), which any replica answers, a follower that had not applied a
// write yet made Release find no claim and keep it, or Claim report a
// completed key Busy: 3 of 10 runs failed (MiddlewareFailureReleases,
// MiddlewareDropsDuplicates) before reads went through the leader.
func TestConformanceCluster(t *testing.T) {
	nodes := natsservertest.StartCluster(t, 3)
	next := 0
	dedupetest.Run(t, func(t *testing.T) middleware.DedupeStore {
		node := nodes[next%len(nodes)]
		next++
		s, err := natsdedupe.New(ctx(t), natsservertest.JetStream(t, node.ClientURL()), natsdedupe.WithBucket("cluster"), natsdedupe.WithReplicas(3))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
