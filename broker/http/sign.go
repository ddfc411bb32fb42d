package httpbroker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Request headers of a signed delivery.
const (
	// HeaderTimestamp is when the delivery was signed, in Unix milliseconds.
	HeaderTimestamp = "Herald-Timestamp"
	// HeaderNonce is 32 hex digits, unique per delivery request.
	HeaderNonce = "Herald-Nonce"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256 of the request.
	HeaderSignature = "Herald-Signature"
)

const (
	signaturePrefix = "v1="
	nonceLength     = 32 // hex digits
	requestLabel    = "herald-delivery-v1\n"
	resultsLabel    = "herald-results-v1\n"
	// MinSecretLength is the shortest shared secret accepted.
	MinSecretLength = 16
)

// signer signs with the first key and verifies with any, so a secret can be
// rotated: give every process the new secret first and the old one second,
// then drop the old one.
type signer struct {
	keys [][]byte
}

// requestMAC is the HMAC of a delivery request: the path (which names the
// subscription), the timestamp, the nonce and the body, which holds the
// topic, the messages, their headers and attempts.
func requestMAC(key []byte, path, ts, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(requestLabel))
	m.Write([]byte(path))
	m.Write([]byte{'\n'})
	m.Write([]byte(ts))
	m.Write([]byte{'\n'})
	m.Write([]byte(nonce))
	m.Write([]byte{'\n'})
	m.Write(body)
	return m.Sum(nil)
}

func (s *signer) sign(path, ts, nonce string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(requestMAC(s.keys[0], path, ts, nonce, body))
}

// verify reports whether sig is a valid signature of the request under one
// of the keys, in constant time per key.
func (s *signer) verify(path, ts, nonce, sig string, body []byte) bool {
	if len(sig) != len(signaturePrefix)+2*sha256.Size || sig[:len(signaturePrefix)] != signaturePrefix {
		return false
	}
	want, err := hex.DecodeString(sig[len(signaturePrefix):])
	if err != nil {
		return false
	}
	ok := false
	for _, k := range s.keys {
		if hmac.Equal(requestMAC(k, path, ts, nonce, body), want) {
			ok = true
		}
	}
	return ok
}

// resultsMAC returns the running MAC of a delivery's results under key:
// checkpoints carry its sum over every result frame written so far.
func resultsMAC(key []byte, nonce string) hash.Hash {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(resultsLabel))
	m.Write([]byte(nonce))
	m.Write([]byte{'\n'})
	return m
}

// resultVerifier follows the results MAC under every key, so it can verify
// a subscriber that signs with any of them.
type resultVerifier struct {
	macs []hash.Hash
}

func (s *signer) resultVerifier(nonce string) *resultVerifier {
	v := &resultVerifier{}
	for _, k := range s.keys {
		v.macs = append(v.macs, resultsMAC(k, nonce))
	}
	return v
}

func (v *resultVerifier) write(frame []byte) {
	for _, m := range v.macs {
		m.Write(frame)
	}
}

func (v *resultVerifier) check(sum []byte) bool {
	ok := false
	for _, m := range v.macs {
		if hmac.Equal(m.Sum(nil), sum) {
			ok = true
		}
	}
	return ok
}

func newNonce() string {
	var b [nonceLength / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func validNonce(n string) bool {
	if len(n) != nonceLength {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func timestamp(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// parseTimestamp reads a HeaderTimestamp value.
func parseTimestamp(s string) (time.Time, bool) {
	if s == "" || len(s) > 19 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// nonceCache remembers the nonces of accepted deliveries until their
// timestamp leaves the replay window, so a delivery replayed within the
// window is refused. It holds at most max nonces: beyond, deliveries are
// refused (503, retried later by the publisher) rather than memory growing
// without bound.
type nonceCache struct {
	mu        sync.Mutex
	seen      map[string]time.Time // nonce → when it may be forgotten
	max       int
	nextPrune time.Time
}

func newNonceCache(max int) *nonceCache {
	return &nonceCache{seen: map[string]time.Time{}, max: max}
}

// add records nonce until forget; it returns false when the nonce was seen
// already (a replay), and full when there is no room.
func (c *nonceCache) add(nonce string, forget, now time.Time) (fresh, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.seen[nonce]; dup {
		return false, false
	}
	if len(c.seen) >= c.max || now.After(c.nextPrune) {
		for n, t := range c.seen {
			if now.After(t) {
				delete(c.seen, n)
			}
		}
		c.nextPrune = now.Add(time.Second)
		if len(c.seen) >= c.max {
			return true, true
		}
	}
	c.seen[nonce] = forget
	return true, false
}
