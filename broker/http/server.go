package httpbroker

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/herald-dev/herald/broker"
)

// Paths and content types of the delivery endpoint.
const (
	// DeliveryPath is the path prefix of the subscriber endpoint: a
	// subscription with ID id receives its deliveries at DeliveryPath + id.
	DeliveryPath       = "/herald/broker/v1/subscriptions/"
	contentTypeBatch   = "application/x-herald-batch"
	contentTypeResults = "application/x-herald-results"
)

// maxReading bounds the delivery bodies being read at once.
const maxReading = 64

// requestLimit is the largest delivery request body the endpoint reads.
func (b *Broker) requestLimit() int64 {
	return int64(b.cfg.batchBytes) + int64(b.cfg.maxMessage) + 64<<10
}

// listen opens the subscriber endpoint if it is not open yet, and returns
// its base URL.
func (b *Broker) listen() (string, error) {
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	if b.srv != nil {
		return b.baseURL, nil
	}
	ln, err := net.Listen("tcp", b.cfg.listen)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", b.cfg.listen, err)
	}
	base, err := b.advertised(ln.Addr())
	if err != nil {
		_ = ln.Close()
		return "", err
	}
	b.ln, b.baseURL = ln, base
	b.serve(ln)
	b.log.Info("http broker: subscriber endpoint listening", "addr", ln.Addr().String(), "url", base)
	return base, nil
}

// serve starts an HTTP server on ln. srvMu is held.
func (b *Broker) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+DeliveryPath+"{id}", b.serveDelivery)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         b.cfg.serverTLS,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	b.srv = srv
	go func() {
		var err error
		if b.cfg.serverTLS != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("http broker: subscriber endpoint stopped", "err", err)
		}
	}()
}

// advertised returns the base URL publishers reach the endpoint at.
func (b *Broker) advertised(addr net.Addr) (string, error) {
	scheme := "http"
	if b.cfg.serverTLS != nil {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	host := ""
	if b.cfg.advertise != "" {
		h, p, _ := net.SplitHostPort(b.cfg.advertise)
		host = h
		if p != "0" {
			port = p
		}
	} else {
		h, _, _ := net.SplitHostPort(b.cfg.listen)
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			return "", fmt.Errorf("%w: http: listening on %s, all interfaces: set an advertise address publishers can reach (WithAdvertise, advertise= in the URL)", broker.ErrInvalidOption, b.cfg.listen)
		}
		host = h
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}).String(), nil
}

// refuse answers a delivery that is not handed to any handler, and counts
// it.
func refuse(w http.ResponseWriter, code int, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, why)
}

// serveDelivery checks a delivery request (signature, timestamp, nonce,
// size, format) and hands its messages to the subscription.
func (b *Broker) serveDelivery(w http.ResponseWriter, r *http.Request) {
	ts, nonce, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if ts == "" || nonce == "" || sig == "" {
		b.stats.unsigned.Add(1)
		refuse(w, http.StatusUnauthorized, "unsigned delivery")
		return
	}
	at, ok := parseTimestamp(ts)
	if !ok || !validNonce(nonce) {
		b.stats.forged.Add(1)
		refuse(w, http.StatusUnauthorized, "bad signature headers")
		return
	}
	now := time.Now()
	if d := now.Sub(at); d > b.cfg.replayWindow || d < -b.cfg.replayWindow {
		b.stats.stale.Add(1)
		refuse(w, http.StatusForbidden, "delivery timestamp outside the replay window (clock skew?)")
		return
	}
	// At most maxReading bodies are read at once: a body is read whole
	// before its signature can be checked, so this bounds the memory that
	// unauthenticated requests can take.
	select {
	case b.reading <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	release := sync.OnceFunc(func() { <-b.reading })
	defer release()
	// The body must arrive within a minute; the response, which streams
	// while handlers run, has no deadline.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(now.Add(time.Minute))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.requestLimit()))
	_ = rc.SetReadDeadline(time.Time{})
	release()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			b.stats.tooLarge.Add(1)
			refuse(w, http.StatusRequestEntityTooLarge, "delivery of more than "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
			return
		}
		b.stats.malformed.Add(1)
		refuse(w, http.StatusBadRequest, "reading the delivery failed")
		return
	}
	if !b.sign.verify(r.URL.Path, ts, nonce, sig, body) {
		b.stats.forged.Add(1)
		refuse(w, http.StatusUnauthorized, "bad signature")
		return
	}
	fresh, full := b.nonces.add(nonce, at.Add(b.cfg.replayWindow), now)
	if full {
		b.stats.busy.Add(1)
		refuse(w, http.StatusServiceUnavailable, "too many deliveries to remember")
		return
	}
	if !fresh {
		b.stats.replayed.Add(1)
		refuse(w, http.StatusForbidden, "replayed delivery")
		return
	}
	topic, msgs, err := decodeBatch(body, b.cfg.maxMessage)
	if err != nil {
		b.stats.malformed.Add(1)
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	s := b.subscription(r.PathValue("id"))
	if s == nil {
		refuse(w, http.StatusGone, "no such subscription")
		return
	}
	if topic != s.topic {
		b.stats.malformed.Add(1)
		refuse(w, http.StatusBadRequest, "delivery for another topic")
		return
	}
	s.serve(w, r, nonce, msgs)
}

func (b *Broker) subscription(id string) *subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[id]
}
