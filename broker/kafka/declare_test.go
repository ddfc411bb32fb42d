package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/twmb/franz-go/pkg/kadm"
)

// DeclareGroup creates the topic and the group's retry topic as the
// group's first Subscribe would (the broker's partitions, the cluster's
// append time), and leaves a topic that exists as it is.
func TestDeclareGroupCreatesTopics(t *testing.T) {
	c := startCluster(t)
	b := c.open(t) // 4 partitions (testOptions)
	var adm *kadm.Client
	if !broker.As(b, &adm) {
		t.Fatal("As(**kadm.Client) = false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	topic := name(t, "declared")
	if err := b.DeclareGroup(ctx, topic, "workers"); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
	retry := "herald-retry.workers." + topic
	details, err := adm.ListTopics(ctx, topic, retry)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	for _, tp := range []string{topic, retry} {
		d, ok := details[tp]
		if !ok || d.Err != nil {
			t.Errorf("topic %s after DeclareGroup: %+v (listed %v)", tp, d, ok)
			continue
		}
		if n := len(d.Partitions); n != 4 {
			t.Errorf("topic %s has %d partitions, want the broker's 4", tp, n)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	if v, err := cfgs.On(topic, nil); err != nil {
		t.Errorf("config of %s: %v", topic, err)
	} else if ts, ok := configValue(v, "message.timestamp.type"); !ok || ts != "LogAppendTime" {
		t.Errorf("message.timestamp.type of %s = %q (set %v), want LogAppendTime", topic, ts, ok)
	}

	existing := name(t, "existing")
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, existing); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if err := b.DeclareGroup(ctx, existing, "workers"); err != nil {
		t.Fatalf("DeclareGroup on an existing topic: %v", err)
	}
	details, err = adm.ListTopics(ctx, existing)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if n := len(details[existing].Partitions); n != 2 {
		t.Errorf("the existing topic has %d partitions after DeclareGroup, want its 2", n)
	}
}

// configValue returns the value of the config key in rc.
func configValue(rc kadm.ResourceConfig, key string) (string, bool) {
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value, true
		}
	}
	return "", false
}
