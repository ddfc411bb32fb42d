// Package natsurl turns the host part of a Herald "nats://" URL into the
// server list that nats.go dials, for the NATS broker and the NATS
// registry alike.
//
// A URL may name several servers of one cluster, separated by commas:
// "nats://u:p@a:4222,b:4222,c:4222". nats.go takes a comma-separated list
// of URLs, but applies a URL's user and password to that URL only; Servers
// gives each server the scheme and credentials of the whole URL, so every
// server of the list is dialled with them.
package natsurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadHost is wrapped by the errors of [Servers].
var ErrBadHost = errors.New("bad server list")

// Servers returns the comma-separated server URLs of u (its query, path
// and fragment left out), each with u's scheme and user information. Every
// server is host or host:port, with a port in 1..65535; u must name at
// least one and may not have a path.
func Servers(u *url.URL) (string, error) {
	if u.Host == "" {
		return "", fmt.Errorf("%w: no server", ErrBadHost)
	}
	if strings.HasPrefix(u.Path, "//") {
		return "", fmt.Errorf("%w: one scheme for the whole list (%s://a:4222,b:4222), not one per server", ErrBadHost, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("%w: a NATS URL has no path, not %q", ErrBadHost, u.Path)
	}
	hosts := strings.Split(u.Host, ",")
	out := make([]string, len(hosts))
	for i, h := range hosts {
		if err := checkHost(h); err != nil {
			return "", fmt.Errorf("%w: server %d of %d: %v", ErrBadHost, i+1, len(hosts), err)
		}
		s := url.URL{Scheme: u.Scheme, User: u.User, Host: h}
		out[i] = s.String()
	}
	return strings.Join(out, ","), nil
}

// checkHost accepts host or host:port (an IPv6 address in brackets).
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty (two commas in a row, or one at an end)")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil {
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				host, port = h[1:len(h)-1], ""
			} else {
				return fmt.Errorf("%q: %v", h, err)
			}
		}
	} else if strings.Contains(h, ":") {
		return fmt.Errorf("%q: an IPv6 address needs brackets", h)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", h)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be in 1..65535", h)
		}
	}
	return nil
}
