package httpbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The spool is one bbolt file, spool.db, in the spool directory:
//
//	targets/<target key>/<seq>  a message waiting for one target: 4 bytes
//	                            attempts made, 8 bytes due time (Unix ns,
//	                            0 = now), then the stored message
//	groups/<topic>/<group>      a queue group known to exist (durable by
//	                            name): its messages are kept until a member
//	                            takes them
//
// A target is a queue group of a topic ("g/<topic>/<group>"), a broadcast
// subscription ("b/<topic>/<subscription id>") or the dead letters of a
// topic that had no subscriber when they were published ("h/<topic>").
// Sequence numbers come from each target's bucket, so a cursor reads a
// target's messages in publish order.
var (
	bucketTargets = []byte("targets")
	bucketGroups  = []byte("groups")
)

const recordHeader = 12 // attempts (4) + due (8)

// spool is the publisher's durable store.
type spool struct {
	db *bolt.DB
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	path := filepath.Join(dir, "spool.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true, // the freelist is rebuilt on open: commits write less
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("spool %s is in use by another broker", path)
	}
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTargets, bucketGroups} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	return &spool{db: db}, nil
}

func (s *spool) close() error { return s.db.Close() }

// targetKind is the first byte of a target key.
const (
	kindGroup     = 'g'
	kindBroadcast = 'b'
	kindHeld      = 'h'
)

func groupKey(topic, group string) string       { return "g/" + topic + "/" + group }
func broadcastKey(topic, id string) string      { return "b/" + topic + "/" + id }
func heldKey(topic string) string               { return "h/" + topic }
func groupRecordKey(topic, group string) []byte { return []byte(topic + "/" + group) }

// parseTargetKey splits a target key into its kind, topic and name.
func parseTargetKey(key string) (kind byte, topic, name string, ok bool) {
	if len(key) < 3 || key[1] != '/' {
		return 0, "", "", false
	}
	kind, rest := key[0], key[2:]
	switch kind {
	case kindHeld:
		return kind, rest, "", rest != ""
	case kindGroup, kindBroadcast:
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 || i == len(rest)-1 {
			return 0, "", "", false
		}
		return kind, rest[:i], rest[i+1:], true
	}
	return 0, "", "", false
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func newRecord(stored []byte) []byte {
	rec := make([]byte, recordHeader, recordHeader+len(stored))
	return append(rec, stored...)
}

func recordAttempts(rec []byte) uint32 { return binary.BigEndian.Uint32(rec) }
func recordDue(rec []byte) int64       { return int64(binary.BigEndian.Uint64(rec[4:])) }

// loaded is what a spool holds when it is opened.
type loaded struct {
	targets map[string][]*entry // by target key, in sequence order
	groups  map[string][]string // known groups by topic
}

// load reads the spool's index: every waiting message's target, sequence,
// attempts and due time (not the messages themselves), and the known
// groups.
func (s *spool) load() (loaded, error) {
	l := loaded{targets: map[string][]*entry{}, groups: map[string][]string{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketTargets).ForEachBucket(func(k []byte) error {
			key := string(k)
			if _, _, _, ok := parseTargetKey(key); !ok {
				return nil // not ours; left alone
			}
			var es []*entry
			err := tx.Bucket(bucketTargets).Bucket(k).ForEach(func(sk, v []byte) error {
				if len(sk) != 8 || len(v) < recordHeader {
					return nil
				}
				es = append(es, &entry{
					seq:      binary.BigEndian.Uint64(sk),
					attempts: recordAttempts(v),
					due:      recordDue(v),
					size:     len(v) - recordHeader,
				})
				return nil
			})
			if len(es) > 0 {
				l.targets[key] = es
			}
			return err
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketGroups).ForEach(func(k, _ []byte) error {
			rk := string(k)
			i := strings.LastIndexByte(rk, '/')
			if i > 0 {
				l.groups[rk[:i]] = append(l.groups[rk[:i]], rk[i+1:])
			}
			return nil
		})
	})
	return l, err
}

// read copies the stored messages of the given sequence numbers of target
// into a batch after buf, each preceded by its attempt number (attempts made
// + 1). It reports which entries were found: an entry whose record is gone
// (acknowledged meanwhile, or its target dropped) is skipped.
func (s *spool) read(buf []byte, target string, es []*entry) ([]byte, []bool, error) {
	found := make([]bool, len(es))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTargets).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		var k [8]byte
		for i, e := range es {
			binary.BigEndian.PutUint64(k[:], e.seq)
			v := b.Get(k[:])
			if len(v) < recordHeader {
				continue
			}
			found[i] = true
			buf = appendBatchEntry(buf, int(e.attempts)+1, v[recordHeader:])
		}
		return nil
	})
	return buf, found, err
}
