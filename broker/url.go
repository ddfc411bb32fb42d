package broker

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// OpenFunc opens a broker from a URL whose scheme it was registered for.
type OpenFunc func(ctx context.Context, u *url.URL) (Broker, error)

// URLMux opens brokers by URL, choosing the backend by the URL's scheme. The
// zero value is ready to use, with no schemes. A program builds one, registers
// the backends it links, and passes it down.
//
// Register must not be called concurrently with Open.
type URLMux struct {
	openers map[string]OpenFunc
}

// Register makes open handle URLs of scheme. It panics when scheme is empty,
// open is nil, or the scheme is already registered: those are programming
// errors, found the first time the program runs.
func (m *URLMux) Register(scheme string, open OpenFunc) {
	scheme = strings.ToLower(scheme)
	if scheme == "" || open == nil {
		panic("broker: Register needs a scheme and an opener")
	}
	if _, dup := m.openers[scheme]; dup {
		panic("broker: scheme " + scheme + " registered twice")
	}
	if m.openers == nil {
		m.openers = map[string]OpenFunc{}
	}
	m.openers[scheme] = open
}

// Schemes returns the registered schemes, sorted.
func (m *URLMux) Schemes() []string {
	s := make([]string, 0, len(m.openers))
	for k := range m.openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open parses rawURL and opens a broker with the opener of its scheme. The
// error wraps [ErrBadURL] for a URL that cannot be parsed and
// [ErrUnknownScheme] for a scheme with no opener; errors never contain the
// URL's password.
func (m *URLMux) Open(ctx context.Context, rawURL string) (Broker, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// A *url.Error repeats the input, which may hold a password: keep
		// only its cause.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: %q has no scheme (want one of %s)", ErrBadURL, u.Redacted(), strings.Join(m.Schemes(), ", "))
	}
	open, ok := m.openers[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("%w: %q in %q (want one of %s)", ErrUnknownScheme, u.Scheme, u.Redacted(), strings.Join(m.Schemes(), ", "))
	}
	return open(ctx, u)
}

// CheckQuery returns an error wrapping [ErrBadURL] when u has a query
// parameter not in known, or one given twice. Openers call it so a typo in a
// URL is an error, not a silently ignored setting.
func CheckQuery(u *url.URL, known ...string) error {
	for k, v := range u.Query() {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return fmt.Errorf("%w: unknown query parameter %q (this scheme takes none)", ErrBadURL, k)
			}
			return fmt.Errorf("%w: unknown query parameter %q (known: %s)", ErrBadURL, k, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return fmt.Errorf("%w: query parameter %q given %d times", ErrBadURL, k, len(v))
		}
	}
	return nil
}
