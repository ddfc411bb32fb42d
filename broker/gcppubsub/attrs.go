package gcppubsub

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"maps"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-dev/herald/broker"
)

// Pub/Sub's limits on attributes.
const (
	maxAttrs     = 100
	maxAttrKey   = 256
	maxAttrValue = 1024
	// directAttrs is how many headers travel as attributes of their own;
	// the rest share the packed ones.
	directAttrs = 80
)

// attrPacked starts the attributes that carry, packed, the headers Pub/Sub
// cannot carry as attributes: names longer than 256 bytes or starting with
// "goog", values longer than 1,024 bytes (a dead letter's reason), text that
// is not UTF-8, and headers beyond the 80th. "herald-hdr-0", "herald-hdr-1"…
// hold, in order, the base64 of the packed pairs.
const attrPacked = "herald-hdr-"

// reserved reports whether a header name is one the backend sets: given by
// a publisher it is dropped, and it never reaches a handler.
func reserved(k string) bool {
	return k == broker.HeaderID || k == broker.HeaderPublishedAt || strings.HasPrefix(k, attrPacked)
}

// encodeAttrs returns the attributes that carry h and id.
func encodeAttrs(h broker.Header, id string) (map[string]string, error) {
	attrs := make(map[string]string, len(h)+1)
	var packed []string
	keys := make([]string, 0, len(h))
	for k := range h {
		if !reserved(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // the same headers always pack the same way
	for _, k := range keys {
		v := h[k]
		if len(attrs) < directAttrs && fitsAttr(k, v) {
			attrs[k] = v
			continue
		}
		packed = append(packed, k, v)
	}
	if fitsAttr(broker.HeaderID, id) {
		attrs[broker.HeaderID] = id
	} else {
		packed = append(packed, broker.HeaderID, id)
	}
	if len(packed) > 0 {
		var buf []byte
		for _, s := range packed {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
		enc := base64.RawStdEncoding.EncodeToString(buf)
		for i := 0; len(enc) > 0; i++ {
			n := min(len(enc), maxAttrValue)
			attrs[attrPacked+strconv.Itoa(i)] = enc[:n]
			enc = enc[n:]
		}
	}
	if len(attrs) > maxAttrs {
		return nil, errTooManyHeaders
	}
	return attrs, nil
}

var errTooManyHeaders = errors.New("headers do not fit in Pub/Sub's 100 attributes")

// fitsAttr reports whether k=v can be a Pub/Sub attribute as it is.
func fitsAttr(k, v string) bool {
	return k != "" && len(k) <= maxAttrKey && len(v) <= maxAttrValue &&
		!strings.HasPrefix(strings.ToLower(k), "goog") && utf8.ValidString(k) && utf8.ValidString(v)
}

// decodeAttrs returns the headers and the ID that attrs carry. ok is false
// when the packed attributes are damaged.
func decodeAttrs(attrs map[string]string) (h broker.Header, id string, ok bool) {
	h = make(broker.Header, len(attrs))
	var enc strings.Builder
	for i := 0; ; i++ {
		part, found := attrs[attrPacked+strconv.Itoa(i)]
		if !found {
			break
		}
		enc.WriteString(part)
	}
	for k, v := range attrs {
		switch {
		case k == broker.HeaderID:
			id = v
		case reserved(k):
		default:
			h[k] = v
		}
	}
	ok = true
	if enc.Len() > 0 {
		buf, err := base64.RawStdEncoding.DecodeString(enc.String())
		if err != nil {
			return h, id, false
		}
		var pair []string
		for len(buf) > 0 {
			n, w := binary.Uvarint(buf)
			if w <= 0 || uint64(len(buf)-w) < n {
				return h, id, false
			}
			pair = append(pair, string(buf[w:w+int(n)]))
			buf = buf[w+int(n):]
			if len(pair) == 2 {
				if pair[0] == broker.HeaderID {
					id = pair[1]
				} else {
					h[pair[0]] = pair[1]
				}
				pair = pair[:0]
			}
		}
	}
	if len(h) == 0 {
		h = nil
	}
	return h, id, ok
}

// attrsSize is about how many bytes attrs add to a message.
func attrsSize(attrs map[string]string) int {
	n := 0
	for k, v := range maps.All(attrs) {
		n += len(k) + len(v) + 4
	}
	return n
}
