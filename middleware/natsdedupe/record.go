package natsdedupe

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// errNotRecord is wrapped by the errors of a bucket value this store did not
// write.
var errNotRecord = errors.New("not a dedupe record")

// plainByte reports whether c may appear in a key kept as it is.
func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// encodeKey returns the bucket key of a message key (see the package doc).
func encodeKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("natsdedupe: empty key")
	}
	if len(key) > MaxKeyLen {
		return "", fmt.Errorf("natsdedupe: key is %d bytes, more than %d", len(key), MaxKeyLen)
	}
	for i := range len(key) {
		if !plainByte(key[i]) {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
		}
	}
	return key, nil
}

// The states of a record, as its value starts.
const (
	claimedPrefix = "claimed:"
	donePrefix    = "done:"
)

// record is the decoded value of a key.
type record struct {
	owner string
	done  bool
}

func (r record) encode() []byte {
	if r.done {
		return []byte(donePrefix + r.owner)
	}
	return []byte(claimedPrefix + r.owner)
}

// decodeRecord reads a bucket value. Another program may have written the
// key, so anything else than a record is an error, not a guess.
func decodeRecord(v []byte) (record, error) {
	s := string(v)
	var r record
	switch {
	case strings.HasPrefix(s, claimedPrefix):
		r.owner = s[len(claimedPrefix):]
	case strings.HasPrefix(s, donePrefix):
		r.owner, r.done = s[len(donePrefix):], true
	default:
		return r, fmt.Errorf("%w: value %.40q", errNotRecord, s)
	}
	if r.owner == "" {
		return r, fmt.Errorf("%w: no owner in %.40q", errNotRecord, s)
	}
	return r, nil
}
