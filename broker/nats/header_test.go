package nats

import (
	"maps"
	"strings"
	"testing"

	"github.com/herald-dev/herald/broker"
)

func TestHeaderRoundTrip(t *testing.T) {
	for name, m := range map[string]*broker.Message{
		"none":       {ID: "id-1"},
		"plain":      {ID: "id-2", Header: broker.Header{"a": "1", "B-c": "two words"}},
		"escaped":    {ID: "id-3", Header: broker.Header{"x y": "v", "k": " padded ", "nl": "a\nb", "Nats-TTL": "1s", headerEscaped: "mine"}},
		"reserved":   {ID: "id-4", Header: broker.Header{broker.HeaderID: "forged", broker.HeaderPublishedAt: "forged", "k": "v"}},
		"replay":     {ID: "id-5", Header: broker.Header{broker.HeaderReplayedAt: "2026-01-01T00:00:00Z"}},
		"deadLetter": {ID: "id-6", Header: broker.Header{broker.HeaderDeadLetterTime: "t", broker.HeaderDeadLetterQueue: "q"}},
		"oddID":      {ID: " id with\r\nnewline ", Header: broker.Header{"k": "v"}},
		"empty":      {ID: "", Header: broker.Header{"": "empty name"}},
	} {
		t.Run(name, func(t *testing.T) {
			msgID := dedupeID(m)
			h := encodeHeader(m, msgID)
			for k, vs := range h {
				for _, v := range vs {
					if !(safeName(k) || hasPrefixFold(k, natsHeaderPrefix) || k == headerEscaped) || !safeValue(v) {
						t.Errorf("header %q: %q would not cross NATS unchanged", k, v)
					}
				}
			}
			if got, want := wireSize(m, msgID), headerSize(h)+len(m.Body); got != want {
				t.Errorf("wireSize = %d, encoded size %d", got, want)
			}
			id, back := decodeHeader(h)
			if id != m.ID {
				t.Errorf("ID %q, want %q", id, m.ID)
			}
			want := maps.Clone(m.Header)
			delete(want, broker.HeaderID)
			delete(want, broker.HeaderPublishedAt)
			if len(want) == 0 {
				want = nil
			}
			if !maps.Equal(back, want) {
				t.Errorf("headers %q, want %q", back, want)
			}
		})
	}
}

func TestDedupeID(t *testing.T) {
	plain := &broker.Message{ID: "a"}
	replay := &broker.Message{ID: "a", Header: broker.Header{broker.HeaderReplayedAt: "t1"}}
	replay2 := &broker.Message{ID: "a", Header: broker.Header{broker.HeaderReplayedAt: "t2"}}
	dead := &broker.Message{ID: "a", Header: broker.Header{broker.HeaderDeadLetterTime: "t1", broker.HeaderDeadLetterQueue: "g"}}
	ids := map[string]bool{}
	for _, m := range []*broker.Message{plain, replay, replay2, dead} {
		ids[dedupeID(m)] = true
	}
	if len(ids) != 4 {
		t.Errorf("dedupe IDs %v: want four distinct", ids)
	}
	if dedupeID(plain) != "a" {
		t.Errorf("plain message's dedupe ID %q, want its ID", dedupeID(plain))
	}
	if id := dedupeID(&broker.Message{ID: "x\ny"}); strings.ContainsAny(id, "\r\n") {
		t.Errorf("dedupe ID %q is not a header value", id)
	}
}
