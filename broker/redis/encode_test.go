package redis

import (
	"maps"
	"testing"
	"time"

	"github.com/herald-dev/herald/broker"
)

func TestRedoRoundTrip(t *testing.T) {
	cases := []redo{
		{m: &broker.Message{ID: "a", Body: []byte{}}, attempt: 1},
		{m: &broker.Message{ID: "b\x00\xff", Header: broker.Header{"": "", "k": "v\r\n", "\xff": "\x00"}, Body: []byte{0, 1, 2}, PublishedAt: time.Unix(1700000000, 123456789)}, attempt: 7, nonce: "s\x00id"},
	}
	for _, r := range cases {
		got, err := decodeRedo("t.opic", encodeRedo(r))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.m.ID != r.m.ID || string(got.m.Body) != string(r.m.Body) || !maps.Equal(got.m.Header, r.m.Header) ||
			!got.m.PublishedAt.Equal(r.m.PublishedAt) || got.attempt != r.attempt || got.nonce != r.nonce || got.m.Topic != "t.opic" {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	for _, bad := range []string{"", "\x02", "\x01\x05ab", string(encodeRedo(cases[1])[:10])} {
		if _, err := decodeRedo("t", bad); err == nil {
			t.Errorf("decodeRedo(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeRedo(f *testing.F) {
	f.Add(encodeRedo(redo{m: &broker.Message{ID: "x", Header: broker.Header{"a": "b"}, Body: []byte("y")}, attempt: 2}))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeRedo("t", s)
		if err != nil {
			return
		}
		again, err := decodeRedo("t", encodeRedo(r))
		if err != nil || again.m.ID != r.m.ID || string(again.m.Body) != string(r.m.Body) || !maps.Equal(again.m.Header, r.m.Header) {
			t.Fatalf("re-encoding %q changed it: %v", s, err)
		}
	})
}
