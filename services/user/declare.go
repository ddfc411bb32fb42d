package user

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-dev/herald/broker"
	"github.com/herald-dev/herald/events"
)

// Group is a queue group on a topic: a consumer of the service's events,
// which [Server.Start] declares (see [Config.DeclareGroups]).
type Group struct {
	Topic string
	Queue string
}

// String returns g as "topic:queue", the form [ParseGroup] reads.
func (g Group) String() string { return g.Topic + ":" + g.Queue }

// DefaultDeclareGroups returns the groups [Server.Start] declares when
// [Config.DeclareGroups] is nil: the email service's group
// ([events.QueueEmail]) on [events.TopicUserRegistered].
func DefaultDeclareGroups() []Group {
	return []Group{{Topic: events.TopicUserRegistered, Queue: events.QueueEmail}}
}

// ParseGroup reads "topic:queue" ("user.registered:email"), the form of
// `herald serve user --declare-group`. Neither a topic nor a queue group
// name has a ':', so the first one splits them. The error wraps
// [broker.ErrInvalidOption] for a missing ':' and [broker.ErrBadTopic] for
// a name [broker.ValidateGroup] refuses.
func ParseGroup(s string) (Group, error) {
	topic, queue, ok := strings.Cut(s, ":")
	if !ok {
		return Group{}, fmt.Errorf("user: group %q: %w: want topic:queue", s, broker.ErrInvalidOption)
	}
	if err := broker.ValidateGroup(topic, queue); err != nil {
		return Group{}, fmt.Errorf("user: group %q: %w", s, err)
	}
	return Group{Topic: topic, Queue: queue}, nil
}

// declareTimeout bounds the declarations of a start: a broker that cannot
// answer them in that time fails the start rather than hanging it.
const declareTimeout = 30 * time.Second

// declareGroups declares the groups that consume the service's events
// before the relay publishes any (see [Config.DeclareGroups]). A broker
// that cannot declare groups gets a warning: the service runs as it did
// before declarations existed. Any other failure is returned.
func (s *Server) declareGroups(ctx context.Context) error {
	if s.cfg.NoDeclareGroups || len(s.cfg.DeclareGroups) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, declareTimeout)
	defer cancel()
	for _, g := range s.cfg.DeclareGroups {
		err := broker.DeclareGroup(ctx, s.cfg.Broker, g.Topic, g.Queue)
		if errors.Is(err, errors.ErrUnsupported) {
			s.log.Warn("user: the broker cannot declare queue groups ahead: an event published before a group's first member joins may be dropped by brokers that route by binding",
				"groups", fmt.Sprint(s.cfg.DeclareGroups), "err", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("user: declare queue group %s, a consumer of the service's events: %w", g, err)
		}
		s.log.Info("declared queue group", "topic", g.Topic, "queue", g.Queue)
	}
	return nil
}
