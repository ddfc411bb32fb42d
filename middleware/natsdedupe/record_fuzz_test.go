package natsdedupe

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// validKey is what JetStream accepts as a key (nats.go's rule).
var validKey = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

// decodeKey inverts encodeKey, for the fuzz target.
func decodeKey(k string) (string, bool) {
	if enc, ok := strings.CutPrefix(k, "="); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		return string(b), err == nil
	}
	return k, true
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"01a24cd4-0266-729f-b7ed-60dc51d39afc", "a.b", "=a", "x y", "ü", ".", "..", "a*", ">", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := encodeKey(key)
		if key == "" || len(key) > MaxKeyLen {
			if err == nil {
				t.Fatalf("encodeKey(%q) took a key it must refuse", key)
			}
			return
		}
		if err != nil {
			t.Fatalf("encodeKey(%q): %v", key, err)
		}
		if !validKey.MatchString(k) || k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
			t.Fatalf("encodeKey(%q) = %q, not a valid JetStream key", key, k)
		}
		if back, ok := decodeKey(k); !ok || back != key {
			t.Fatalf("encodeKey(%q) = %q decodes to %q", key, k, back)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{"claimed:a", "done:a", "done:", "claimed", "", "other:x", "done:claimed:x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(v)
		if err != nil {
			return
		}
		if r.owner == "" || string(r.encode()) != string(v) {
			t.Fatalf("decodeRecord(%q) = %+v, which encodes to %q", v, r, r.encode())
		}
	})
}
