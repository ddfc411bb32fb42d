package httpbroker

import (
	"fmt"

	"github.com/herald-dev/herald/broker"
	"net"
	"net/http"
	"time"
)

// Crash simulates a crash of the process around b and its restart, on the
// same spool directory and listen address:
//
//   - the subscriber endpoint drops every connection at once (results of
//     handlers still running are lost, as in a crash) and listens again on
//     the same address, with the same registrations;
//   - the publisher's engine stops without committing what it had queued
//     (acknowledgements not yet on disk are lost, as in a crash), and a new
//     one opens the spool file and rebuilds its queues from what is on disk.
//
// Publish calls in progress wait for the new engine.
func (b *Broker) Crash() error {
	b.srvMu.Lock()
	if b.srv != nil {
		addr := b.ln.Addr().String()
		_ = b.srv.Close()
		var ln net.Listener
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; {
			if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the port is being released
		}
		if err != nil {
			b.srvMu.Unlock()
			return fmt.Errorf("listen again on %s: %w", addr, err)
		}
		b.ln = ln
		b.serve(ln)
	}
	b.srvMu.Unlock()
	b.client.Transport.(*http.Transport).CloseIdleConnections()

	b.engMu.Lock()
	old := b.eng
	b.eng = nil
	b.engMu.Unlock()
	if old == nil {
		return nil // closed
	}
	if err := old.stop(true); err != nil {
		return err
	}
	e, err := startEngine(b)
	if err != nil {
		return err
	}
	b.engMu.Lock()
	b.eng = e
	b.engMu.Unlock()
	e.syncAll()
	return nil
}

// EncodeBatch returns the delivery body of msgs on topic, each with its
// Attempt (1 when zero), as a publisher sends it.
func EncodeBatch(topic string, msgs []*broker.Message) []byte {
	body := appendBatchHeader(nil, topic, len(msgs))
	for _, m := range msgs {
		body = appendBatchEntry(body, max(m.Attempt, 1), appendStored(nil, m.ID, m.PublishedAt, m.Header, m.Body))
	}
	return body
}

// ResultsMAC returns the checkpoint MAC of result frames under key.
func ResultsMAC(key []byte, nonce string, frames []byte) []byte {
	m := resultsMAC(key, nonce)
	m.Write(frames)
	return m.Sum(nil)
}

// AckFrame returns the result frame that acknowledges message i.
func AckFrame(i int) []byte { return appendResult(nil, i, statusAck, 0) }

// KnowsGroup reports whether b remembers the queue group of topic.
func (b *Broker) KnowsGroup(topic, group string) bool { return b.knowsGroup(topic, group) }
