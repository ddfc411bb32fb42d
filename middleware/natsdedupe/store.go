package natsdedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-dev/herald/internal/jsleader"
	"github.com/herald-dev/herald/middleware"
)

var _ middleware.DedupeStore = (*Store)(nil)

// maxRounds bounds the retries of one operation that keeps losing races on
// its key; each lost race means another holder made progress.
const maxRounds = 16

// errContention is returned when an operation lost [maxRounds] races.
var errContention = errors.New("natsdedupe: the key kept changing under the operation")

// Store is a [middleware.DedupeStore] in a JetStream key-value bucket (see
// the package doc). It is safe for concurrent use.
type Store struct {
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	bucket    string
	retention time.Duration
}

// New returns a store in the bucket of its options on js, creating the
// bucket when it does not exist (see the package doc). ctx bounds the
// set-up.
//
// Options: [WithBucket], [WithRetention], [WithReplicas].
func New(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Store, error) {
	if js == nil {
		return nil, invalid("nil JetStream")
	}
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	kv, err := ensureBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{js: js, kv: kv, bucket: cfg.bucket, retention: cfg.retention}, nil
}

// Bucket returns the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// ensureBucket creates the bucket, or binds to it and brings its max age
// and replicas to cfg's.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg config) (jetstream.KeyValue, error) {
	want := jetstream.KeyValueConfig{
		Bucket:         cfg.bucket,
		Description:    "Herald dedupe records: one key per handled message; claims leased by per-key TTL",
		History:        1,
		TTL:            cfg.retention,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.replicas,
		LimitMarkerTTL: MarkerTTL,
	}
	kv, err := js.CreateKeyValue(ctx, want)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketExists) {
		return nil, fmt.Errorf("natsdedupe: create bucket %q: %w", cfg.bucket, err)
	}
	// Made by another replica, maybe with other settings.
	if kv, err = js.KeyValue(ctx, cfg.bucket); err != nil {
		return nil, fmt.Errorf("natsdedupe: bucket %q: %w", cfg.bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsdedupe: bucket %q: %w", cfg.bucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil, fmt.Errorf("natsdedupe: bucket %q: unexpected status %T", cfg.bucket, st)
	}
	if bs.LimitMarkerTTL() == 0 {
		return nil, fmt.Errorf("natsdedupe: bucket %q exists without a marker TTL (LimitMarkerTTL), so claims cannot expire; delete it or choose another bucket", cfg.bucket)
	}
	have := bs.Config()
	// Replicas only go up: a replica opened with fewer (a single-server
	// default) must not take the others' copies away.
	want.Replicas = max(want.Replicas, have.Replicas)
	if have.TTL == want.TTL && have.Replicas == want.Replicas && have.History == 1 {
		return kv, nil
	}
	want.Storage, want.LimitMarkerTTL = have.Storage, have.LimitMarkerTTL
	if kv, err = js.UpdateKeyValue(ctx, want); err != nil {
		return nil, fmt.Errorf("natsdedupe: update bucket %q (max age %v, %d replicas): %w", cfg.bucket, want.TTL, want.Replicas, err)
	}
	return kv, nil
}

// conflict reports whether err is JetStream refusing a write because the
// key's last revision was not the one expected: another write got there
// first.
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// lease is a claim's TTL as the server keeps it: whole seconds, at least one.
func lease(ttl time.Duration) time.Duration {
	d := ttl.Truncate(time.Second)
	if d < ttl || d == 0 {
		d += time.Second
	}
	return d
}

// get reads key's record through the bucket's leader; ok is false when
// there is none. A direct get (kv.Get) may be answered by a follower that
// has not applied another replica's Complete yet, and report Busy for a
// key that is done (see internal/jsleader).
func (s *Store) get(ctx context.Context, key, k string) (r record, rev uint64, ok bool, err error) {
	m, err := jsleader.LastMsg(ctx, s.js, "KV_"+s.bucket, "$KV."+s.bucket+"."+k)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return r, 0, false, nil
	}
	if err != nil {
		return r, 0, false, err
	}
	if jsleader.IsKVMarker(m) {
		return r, 0, false, nil
	}
	if r, err = decodeRecord(m.Data); err != nil {
		return r, 0, false, fmt.Errorf("key %q in bucket %q: %w", key, s.bucket, err)
	}
	return r, m.Sequence, true, nil
}

func checkOwner(owner string) error {
	if owner == "" {
		return errors.New("natsdedupe: empty owner")
	}
	return nil
}

// Claim implements [middleware.DedupeStore]: create the key with the
// lease as its TTL, or report what holds it.
func (s *Store) Claim(ctx context.Context, key, owner string, ttl time.Duration) (middleware.ClaimResult, error) {
	k, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	if err := checkOwner(owner); err != nil {
		return 0, err
	}
	d := lease(ttl)
	if s.retention > 0 && d >= s.retention {
		return 0, fmt.Errorf("natsdedupe: claim %q: lease %v is not shorter than the retention %v", key, d, s.retention)
	}
	for range maxRounds {
		_, err := s.kv.Create(ctx, k, record{owner: owner}.encode(), jetstream.KeyTTL(d))
		if err == nil {
			return middleware.Claimed, nil
		}
		if !conflict(err) {
			return 0, fmt.Errorf("natsdedupe: claim %q: %w", key, err)
		}
		r, _, ok, err := s.get(ctx, key, k)
		switch {
		case err != nil:
			return 0, fmt.Errorf("natsdedupe: claim %q: %w", key, err)
		case !ok: // released or expired in between: try again
		case r.done:
			return middleware.Done, nil
		default:
			return middleware.Busy, nil
		}
	}
	return 0, fmt.Errorf("natsdedupe: claim %q: %w", key, errContention)
}

// Complete implements [middleware.DedupeStore]: turn owner's claim into a
// done record, or write the record if owner's lease ran out and nobody
// claimed the key since.
func (s *Store) Complete(ctx context.Context, key, owner string) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	done := record{owner: owner, done: true}.encode()
	for range maxRounds {
		r, rev, ok, err := s.get(ctx, key, k)
		switch {
		case err != nil:
			return fmt.Errorf("natsdedupe: complete %q: %w", key, err)
		case !ok:
			_, err = s.kv.Create(ctx, k, done)
		case r.done || r.owner != owner:
			return nil // done already, or another holder's now
		default:
			_, err = s.kv.Update(ctx, k, done, rev)
		}
		if err == nil {
			return nil
		}
		if !conflict(err) {
			return fmt.Errorf("natsdedupe: complete %q: %w", key, err)
		}
	}
	return fmt.Errorf("natsdedupe: complete %q: %w", key, errContention)
}

// Release implements [middleware.DedupeStore]: purge owner's claim.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	for range maxRounds {
		r, rev, ok, err := s.get(ctx, key, k)
		if err != nil {
			return fmt.Errorf("natsdedupe: release %q: %w", key, err)
		}
		if !ok || r.done || r.owner != owner {
			return nil
		}
		err = s.kv.Purge(ctx, k, jetstream.LastRevision(rev), jetstream.PurgeTTL(MarkerTTL))
		if err == nil {
			return nil
		}
		if !conflict(err) {
			return fmt.Errorf("natsdedupe: release %q: %w", key, err)
		}
	}
	return fmt.Errorf("natsdedupe: release %q: %w", key, errContention)
}
