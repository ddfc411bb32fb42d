package nats

import (
	"testing"
	"time"
)

func TestAckMeta(t *testing.T) {
	for _, tc := range []struct {
		reply          string
		delivered, seq uint64
		ts             int64
		ok             bool
	}{
		{"$JS.ACK.str.con.3.41.7.1700000000123456789.0", 3, 41, 1700000000123456789, true},
		{"$JS.ACK._.ACCHASH.str.con.1.2.3.1700000000000000001.9.tok", 1, 2, 1700000000000000001, true},
		{"$JS.ACK.dom.ACCHASH.str.con.5.6.7.8.9", 5, 6, 8, true},
		{"$JS.ACK.str.con.x.41.7.17.0", 0, 0, 0, false},
		{"$JS.ACK.str.con.3.41", 0, 0, 0, false},
		{"$JS.ACK.a.b.c.d.e.f.g.h.i.j", 0, 0, 0, false}, // 12 tokens, not numbers
		{"_INBOX.abc", 0, 0, 0, false},
	} {
		d, s, ts, ok := ackMeta(tc.reply)
		if ok != tc.ok || d != tc.delivered || s != tc.seq || (ok && !ts.Equal(time.Unix(0, tc.ts))) {
			t.Errorf("ackMeta(%q) = %d, %d, %v, %v; want %d, %d, %v, %v", tc.reply, d, s, ts.UnixNano(), ok, tc.delivered, tc.seq, tc.ts, tc.ok)
		}
	}
}
