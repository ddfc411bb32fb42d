// Package email is the Go Micro tutorial's email service on Herald: a Go
// Micro subscriber of "user.registered" in the queue group "email" that
// sends each new user a welcome mail, as the original tutorial does.
//
// Through Herald the subscriber's error means something: a mail that could
// not be sent (the SMTP server answered 4xx, or is down) is delivered again
// with backoff, then dead-lettered on "user.registered.dlq", instead of being
// lost. Delivery is at least once, so the subscriber is idempotent: it
// remembers the users it has mailed and does not mail one twice when an
// event comes again.
package email

import (
	"context"
	"errors"
	"fmt"
	"sync"

	userv1 "github.com/herald-dev/herald/gomicro/examples/tutorial/gen/tutorial/user/v1"
	"github.com/herald-dev/herald/gomicro/examples/tutorial/user"
	"go-micro.dev/v5"
	"go-micro.dev/v5/server"
)

// Queue is the queue group of the email service: with several instances,
// each event is handled by one of them.
const Queue = "email"

// ServiceName is the Go Micro service name of the email service.
const ServiceName = "email"

// Mailer sends one mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Subscriber sends the welcome mails. It is safe for concurrent use.
type Subscriber struct {
	mailer Mailer

	mu      sync.Mutex
	sent    map[string]bool     // user IDs mailed
	sending map[string]struct{} // user IDs being mailed now
}

// New returns a subscriber that sends with m.
func New(m Mailer) *Subscriber {
	return &Subscriber{mailer: m, sent: map[string]bool{}, sending: map[string]struct{}{}}
}

// Register subscribes s to user.Topic on srv in the queue group [Queue],
// with extra go-micro subscriber options (server.SubscriberContext carrying
// Herald options, say).
func Register(srv micro.Service, s *Subscriber, opts ...server.SubscriberOption) error {
	opts = append([]server.SubscriberOption{server.SubscriberQueue(Queue)}, opts...)
	return micro.RegisterSubscriber(user.Topic, srv.Server(), s.Handle, opts...)
}

// errBusy says that another delivery of the same event is being handled.
var errBusy = errors.New("email: this user's welcome mail is being sent by another delivery")

// Handle sends the welcome mail of one registered user, once per user.
// An error has the event delivered again later.
func (s *Subscriber) Handle(ctx context.Context, ev *userv1.UserRegistered) error {
	id, to := ev.GetId(), ev.GetEmail()
	if id == "" || to == "" {
		// Go Micro's server turns every subscriber error into a string, so
		// Herald cannot be told this is permanent: it is retried, then
		// dead-lettered after the last attempt, where it can be inspected.
		return fmt.Errorf("email: user.registered without id or email")
	}
	s.mu.Lock()
	if s.sent[id] {
		s.mu.Unlock()
		return nil // a redelivery of an event already handled
	}
	if _, busy := s.sending[id]; busy {
		s.mu.Unlock()
		return errBusy
	}
	s.sending[id] = struct{}{}
	s.mu.Unlock()

	err := s.mailer.Send(ctx, to, "Welcome to Herald, "+ev.GetName(),
		fmt.Sprintf("Hello %s,\r\n\r\nyour account %s is ready.\r\n", ev.GetName(), id))

	s.mu.Lock()
	delete(s.sending, id)
	if err == nil {
		s.sent[id] = true
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("email: welcome mail to user %s: %w", id, err)
	}
	return nil
}

// Sent returns how many users were mailed.
func (s *Subscriber) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}
