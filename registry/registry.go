package registry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Instance is one running instance of a service.
type Instance struct {
	// Service is the service's name, such as "herald.user".
	Service string `json:"service"`
	// ID is unique among the service's instances.
	ID string `json:"id"`
	// Addr is where the instance listens: host:port or a URL.
	Addr string `json:"addr"`
	// Metadata is free-form text the instance advertises.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EventType says what happened to an instance.
type EventType int

// The kinds of [Event].
const (
	// Added: the instance was registered or its registration changed.
	Added EventType = iota + 1
	// Removed: the instance deregistered or its lease expired.
	Removed
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Event is a change to one instance of a watched service.
type Event struct {
	Type     EventType
	Instance Instance
}

// Registry registers instances and finds them. Implementations are safe for
// concurrent use.
type Registry interface {
	// Register lists inst and keeps it listed, renewing its lease in the
	// background, until Deregister or Close. Registering an instance again
	// (same Service and ID) updates it.
	Register(ctx context.Context, inst Instance, opts ...RegisterOption) error
	// Deregister stops renewing inst and removes it at once.
	Deregister(ctx context.Context, inst Instance) error
	// Lookup returns the live instances of service, or an error wrapping
	// [ErrNotFound] when there are none. It sees every Register and
	// Deregister that returned before it started, whichever client made
	// them.
	Lookup(ctx context.Context, service string) ([]Instance, error)
	// Watch reports changes to service's instances until ctx is done or the
	// registry closed, then closes the channel. It first reports every
	// instance listed when it starts, as Added.
	Watch(ctx context.Context, service string) (<-chan Event, error)
	// Close deregisters what this registry registered and releases it.
	Close(ctx context.Context) error
}

// Sentinel errors.
var (
	// ErrNotFound: the service has no live instance.
	ErrNotFound = errors.New("registry: service not found")
	// ErrClosed: the registry was closed.
	ErrClosed = errors.New("registry: closed")
	// ErrInvalid: an instance, name or option is not valid.
	ErrInvalid = errors.New("registry: invalid")
)

// DefaultTTL is the lease of a registration that sets none.
const DefaultTTL = 15 * time.Second

// RegisterOptions is what the [RegisterOption]s of one Register call set.
type RegisterOptions struct {
	// TTL is the lease: the instance disappears this long after its last
	// renewal.
	TTL time.Duration
}

// RegisterOption configures one Register call.
type RegisterOption func(*RegisterOptions) error

// TTL sets the lease of the registration (at least one second).
func TTL(d time.Duration) RegisterOption {
	return func(o *RegisterOptions) error {
		if d < time.Second {
			return fmt.Errorf("%w: ttl %v is under 1s", ErrInvalid, d)
		}
		o.TTL = d
		return nil
	}
}

// NewRegisterOptions validates inst (as [ValidateRecord] does: the names
// and an address), applies the defaults and then opts. Implementations call
// it first in Register.
func NewRegisterOptions(inst Instance, opts ...RegisterOption) (RegisterOptions, error) {
	o := RegisterOptions{TTL: DefaultTTL}
	if err := ValidateRecord(inst); err != nil {
		return o, err
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ValidateInstance checks the names of inst, its service and its ID (not
// its address: Deregister needs only the names). Implementations call it in
// Deregister; [NewRegisterOptions] calls it for Register, [ValidateRecord]
// for [Recorder.Record].
func ValidateInstance(inst Instance) error {
	if err := ValidateName(inst.Service); err != nil {
		return err
	}
	if err := ValidateName(inst.ID); err != nil {
		return fmt.Errorf("instance id: %w", err)
	}
	return nil
}

// ValidateName returns nil when name is a valid service name or instance ID:
// 1 to 128 bytes of ASCII letters, digits, '.', '-' and '_', so that every
// implementation can use it as (part of) a key.
func ValidateName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: name %q must be 1 to 128 bytes", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: name %q has %q at byte %d (allowed: letters, digits, '.', '-', '_')", ErrInvalid, name, c, i)
		}
	}
	return nil
}
