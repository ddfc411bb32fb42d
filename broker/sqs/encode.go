package sqs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/herald-dev/herald/broker"
)

// attrName is the one message attribute Herald uses. SNS and SQS carry at
// most 10 attributes, so the ID and every header travel together in it, as
// JSON (see envelope).
const attrName = "herald"

// emptyBody is what travels for an empty body: SNS refuses an empty message.
const emptyBody = "-"

// envelope is the JSON of the herald attribute.
type envelope struct {
	// ID is the message ID.
	ID string `json:"id"`
	// Header holds the headers when all of them are text SQS accepts.
	Header map[string]string `json:"h,omitempty"`
	// HeaderBin holds them otherwise: base64 of length-prefixed name and
	// value pairs, byte for byte.
	HeaderBin string `json:"hb,omitempty"`
	// Enc says how the body travels: "" as it is (text SQS accepts),
	// "b64" in base64, "empty" for an empty body.
	Enc string `json:"enc,omitempty"`
}

// encode returns the SNS message and the herald attribute of m.
func encode(m *broker.Message) (body, attr string, err error) {
	env := envelope{ID: m.ID}
	switch {
	case len(m.Body) == 0:
		env.Enc, body = "empty", emptyBody
	case safe(m.Body):
		body = string(m.Body)
	default:
		env.Enc, body = "b64", base64.StdEncoding.EncodeToString(m.Body)
	}
	text := safeText(m.ID)
	for k, v := range m.Header {
		if k == broker.HeaderID || k == broker.HeaderPublishedAt {
			continue
		}
		text = text && safeText(k) && safeText(v)
	}
	if text {
		for k, v := range m.Header {
			if k == broker.HeaderID || k == broker.HeaderPublishedAt {
				continue
			}
			if env.Header == nil {
				env.Header = make(map[string]string, len(m.Header))
			}
			env.Header[k] = v
		}
	} else {
		var buf []byte
		put := func(s string) {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
		put(broker.HeaderID)
		put(m.ID)
		for k, v := range m.Header {
			if k == broker.HeaderID || k == broker.HeaderPublishedAt {
				continue
			}
			put(k)
			put(v)
		}
		env.ID = ""
		env.HeaderBin = base64.StdEncoding.EncodeToString(buf)
	}
	js, err := json.Marshal(env)
	if err != nil {
		return "", "", err
	}
	return body, string(js), nil
}

var errBadEnvelope = errors.New("damaged herald attribute")

// decode returns the ID, headers and body that a message's body and herald
// attribute carry.
func decode(body, attr string) (id string, h broker.Header, data []byte, err error) {
	var env envelope
	if err := json.Unmarshal([]byte(attr), &env); err != nil {
		return "", nil, []byte(body), errBadEnvelope
	}
	id = env.ID
	if len(env.Header) > 0 {
		h = broker.Header(env.Header)
	}
	if env.HeaderBin != "" {
		buf, err := base64.StdEncoding.DecodeString(env.HeaderBin)
		if err != nil {
			return id, h, []byte(body), errBadEnvelope
		}
		var pair []string
		for len(buf) > 0 {
			n, w := binary.Uvarint(buf)
			if w <= 0 || uint64(len(buf)-w) < n {
				return id, h, []byte(body), errBadEnvelope
			}
			pair = append(pair, string(buf[w:w+int(n)]))
			buf = buf[w+int(n):]
			if len(pair) == 2 {
				if pair[0] == broker.HeaderID {
					id = pair[1]
				} else {
					if h == nil {
						h = broker.Header{}
					}
					h[pair[0]] = pair[1]
				}
				pair = pair[:0]
			}
		}
	}
	switch env.Enc {
	case "empty":
		data = []byte{}
	case "b64":
		data, err = base64.StdEncoding.DecodeString(body)
		if err != nil {
			return id, h, []byte(body), errBadEnvelope
		}
	default:
		data = []byte(body)
	}
	return id, h, data, nil
}

// safe reports whether b is text SQS accepts in a message: UTF-8 made only
// of #x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD and #x10000–#x10FFFF.
func safe(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if !safeRune(r, n) {
			return false
		}
		b = b[n:]
	}
	return true
}

// safeText reports whether s can travel as a JSON string in the attribute
// and come back byte for byte: UTF-8 whose characters SQS accepts once JSON
// has escaped the control characters.
func safeText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r >= 0x20 && !safeRune(r, utf8.RuneLen(r)) {
			return false
		}
	}
	return true
}

func safeRune(r rune, n int) bool {
	if r == utf8.RuneError && n <= 1 {
		return false
	}
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}
