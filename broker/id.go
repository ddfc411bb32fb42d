package broker

import (
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"time"
)

// NewID returns a new message ID: a UUID version 7 (RFC 9562) in its text
// form. IDs sort by creation time, and IDs made by one process are strictly
// increasing (a 12-bit counter within each millisecond). It is safe for
// concurrent use.
func NewID() string {
	var u [16]byte
	ms, seq := ids.next()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(seq>>8)
	u[7] = byte(seq)
	r := rand.Uint64() // runtime-seeded ChaCha8: unique enough, and not guessable
	for i := 8; i < 16; i++ {
		u[i] = byte(r >> (8 * (15 - i)))
	}
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// idClock hands out (millisecond, counter) pairs that never repeat or go
// backwards, even when the wall clock does.
type idClock struct {
	mu  sync.Mutex
	ms  int64
	seq uint16
}

var ids idClock //nolint:gochecknoglobals // process-wide monotonic ID state, like a clock.

func (c *idClock) next() (int64, uint16) {
	now := time.Now().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now > c.ms {
		c.ms = now
		c.seq = uint16(rand.N(1 << 10)) // random start, leaving room to count up
		return c.ms, c.seq
	}
	c.seq++
	if c.seq >= 1<<12 {
		c.ms++
		c.seq = 0
	}
	return c.ms, c.seq
}
