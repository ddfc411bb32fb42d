package broker

import (
	"errors"
	"fmt"
)

// Sentinel errors. Backends wrap them with context; test them with
// [errors.Is].
var (
	// ErrClosed is returned by operations on a closed broker or subscription.
	ErrClosed = errors.New("broker: closed")
	// ErrBadTopic is returned for a topic or queue group name that is not
	// valid (see [ValidateTopic]).
	ErrBadTopic = errors.New("broker: invalid topic")
	// ErrInvalidOption is returned for an option whose value is not valid.
	ErrInvalidOption = errors.New("broker: invalid option")
	// ErrBadURL is returned by [URLMux.Open] for a URL it cannot use.
	ErrBadURL = errors.New("broker: invalid URL")
	// ErrUnknownScheme is returned by [URLMux.Open] for a scheme no backend
	// was registered for.
	ErrUnknownScheme = errors.New("broker: unknown URL scheme")
	// ErrTooLarge is returned by Publish for a message larger than the
	// backend accepts.
	ErrTooLarge = errors.New("broker: message too large")
	// ErrPanic marks the error made of a recovered handler panic.
	ErrPanic = errors.New("broker: handler panicked")
)

// Permanent wraps err to say that retrying cannot help: the message goes to
// the dead-letter topic at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was made by
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
