package gomicro

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	herald "github.com/herald-dev/herald/broker"
)

// QueueName returns the Herald queue group of go-micro's Queue(name). A name
// Herald accepts (one token of letters, digits, '-' and '_', at most
// herald.MaxQueueLength bytes) is used as it is. Any other name, such as the
// dotted "go.micro.srv.email", becomes its allowed characters with the
// others turned into '_', cut to leave room for '-' and 12 hex digits of its
// SHA-256: readable, stable across processes, and distinct for distinct
// names. Every member of a group goes through the same mapping, so the group
// stays one group.
func QueueName(name string) string {
	if herald.ValidateQueue(name) == nil {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:6])
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < herald.MaxQueueLength-len(suffix); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("q")
	}
	return b.String() + suffix
}
