package mem

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/registry"
)

// Store holds the registrations of one process. Its clients are the
// [Registry] values made with [WithStore]; the zero Store is not usable, call
// [NewStore]. A Store is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	services map[string]map[string]*entry // service → instance ID → entry
	watchers map[string]map[*watcher]struct{}
}

// entry is one listed instance and the timer that expires its lease (nil
// for a record, which has none).
type entry struct {
	inst  registry.Instance
	timer *time.Timer
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		services: map[string]map[string]*entry{},
		watchers: map[string]map[*watcher]struct{}{},
	}
}

// put lists inst for ttl from now (for good when ttl is 0: a record),
// replacing a listing of the same instance, and tells the watchers when the
// listing is new or changed.
func (s *Store) put(inst registry.Instance, ttl time.Duration) {
	inst = clone(inst)
	s.mu.Lock()
	defer s.mu.Unlock()
	insts := s.services[inst.Service]
	if insts == nil {
		insts = map[string]*entry{}
		s.services[inst.Service] = insts
	}
	e := insts[inst.ID]
	changed := e == nil || !equal(e.inst, inst)
	if e == nil {
		e = &entry{}
		insts[inst.ID] = e
	} else if e.timer != nil {
		e.timer.Stop()
	}
	e.inst = inst
	e.timer = nil
	if ttl > 0 {
		// The timer removes this very entry, unless it was replaced meanwhile.
		e.timer = time.AfterFunc(ttl, func() { s.expire(inst.Service, inst.ID, e) })
	}
	if changed {
		s.notify(inst.Service, registry.Event{Type: registry.Added, Instance: clone(inst)})
	}
}

// expire removes e when its lease ran out and it is still the listing.
func (s *Store) expire(service, id string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.services[service][id]; cur == e {
		s.removeLocked(service, id)
	}
}

// remove delists the instance, if listed.
func (s *Store) remove(service, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(service, id)
}

func (s *Store) removeLocked(service, id string) {
	e := s.services[service][id]
	if e == nil {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	delete(s.services[service], id)
	if len(s.services[service]) == 0 {
		delete(s.services, service)
	}
	s.notify(service, registry.Event{Type: registry.Removed, Instance: clone(e.inst)})
}

// lookup returns the instances of service sorted by ID.
func (s *Store) lookup(service string) []registry.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(service)
}

func (s *Store) listLocked(service string) []registry.Instance {
	insts := make([]registry.Instance, 0, len(s.services[service]))
	for _, e := range s.services[service] {
		insts = append(insts, clone(e.inst))
	}
	slices.SortFunc(insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
	return insts
}

// watch adds w to the watchers of service and queues the current instances
// as Added, atomically, so w misses and repeats nothing.
func (s *Store) watch(service string, w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inst := range s.listLocked(service) {
		w.push(registry.Event{Type: registry.Added, Instance: inst})
	}
	ws := s.watchers[service]
	if ws == nil {
		ws = map[*watcher]struct{}{}
		s.watchers[service] = ws
	}
	ws[w] = struct{}{}
}

// unwatch removes w from the watchers of service.
func (s *Store) unwatch(service string, w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers[service], w)
	if len(s.watchers[service]) == 0 {
		delete(s.watchers, service)
	}
}

func (s *Store) notify(service string, ev registry.Event) {
	for w := range s.watchers[service] {
		ev.Instance = clone(ev.Instance)
		w.push(ev)
	}
}

func clone(inst registry.Instance) registry.Instance {
	inst.Metadata = maps.Clone(inst.Metadata)
	return inst
}

func equal(a, b registry.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr && maps.Equal(a.Metadata, b.Metadata)
}
