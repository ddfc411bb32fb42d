package middleware

import (
	"context"
	"sync"
	"time"
)

// MemoryDedupeStore is a [DedupeStore] in process memory, for tests and
// single-process programs. Done keys are kept for Retention (forever when
// 0), and forgotten lazily after that.
type MemoryDedupeStore struct {
	// Retention is how long a done key is remembered; 0 keeps it forever.
	Retention time.Duration

	mu      sync.Mutex
	entries map[string]memoryEntry
	pruned  time.Time
}

type memoryEntry struct {
	owner string
	done  bool
	until time.Time // claim expiry, or when a done key may be forgotten
}

var _ DedupeStore = (*MemoryDedupeStore)(nil)

// Claim implements [DedupeStore].
func (s *MemoryDedupeStore) Claim(_ context.Context, key, owner string, ttl time.Duration) (ClaimResult, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[string]memoryEntry{}
	}
	s.prune(now)
	if e, ok := s.entries[key]; ok {
		switch {
		case e.done:
			return Done, nil
		case now.Before(e.until):
			return Busy, nil
		}
	}
	s.entries[key] = memoryEntry{owner: owner, until: now.Add(ttl)}
	return Claimed, nil
}

// Complete implements [DedupeStore].
func (s *MemoryDedupeStore) Complete(_ context.Context, key, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && e.owner == owner {
		e.done = true
		e.until = time.Now().Add(s.Retention)
		s.entries[key] = e
	}
	return nil
}

// Release implements [DedupeStore].
func (s *MemoryDedupeStore) Release(_ context.Context, key, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && e.owner == owner && !e.done {
		delete(s.entries, key)
	}
	return nil
}

// prune forgets expired done keys, at most once a minute.
func (s *MemoryDedupeStore) prune(now time.Time) {
	if s.Retention <= 0 || now.Sub(s.pruned) < time.Minute {
		return
	}
	s.pruned = now
	for k, e := range s.entries {
		if e.done && now.After(e.until) {
			delete(s.entries, k)
		}
	}
}
