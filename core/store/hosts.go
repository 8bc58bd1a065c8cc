package store

import (
	"context"
	"database/sql"
	"sort"
	"time"
)

// HostInfo is what the store knows of a host that has reported.
type HostInfo struct {
	Name      string
	Dyn       bool
	FirstSeen float64
	LastSeen  float64
}

// EnsureHost records a host the first time it reports (dyn for hosts that
// registered themselves with the enroll key) and returns whether it is new.
// It is the one place a self-registration is recorded: a new dynamic host
// is also journaled ("web01 registered (dynamic)"), whichever path (a
// heartbeat or a sample batch) heard it first.
func (s *Store) EnsureHost(ctx context.Context, name string, dyn bool) (bool, error) {
	s.mu.RLock()
	_, ok := s.hosts[name]
	s.mu.RUnlock()
	if ok {
		return false, nil
	}
	now := toUnix(time.Now())
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT OR IGNORE INTO hosts (name, dyn, first_seen, last_seen) VALUES (?, ?, ?, ?)`, name, dyn, now, now)
		return err
	})
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	if _, ok := s.hosts[name]; ok {
		s.mu.Unlock()
		return false, nil
	}
	s.hosts[name] = HostInfo{Name: name, Dyn: dyn, FirstSeen: now, LastSeen: now}
	if dyn {
		s.dynHosts++
	}
	s.mu.Unlock()
	if dyn {
		s.Journal(name, name+" registered (dynamic)")
	}
	return true, nil
}

func (s *Store) touchHost(name string, now float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hosts[name]; ok {
		h.LastSeen = now
		s.hosts[name] = h
	}
}

// DynamicHosts returns how many self-registered hosts the store knows.
func (s *Store) DynamicHosts() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dynHosts
}

// Host returns what the store knows of one host.
func (s *Store) Host(name string) (HostInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.hosts[name]
	return h, ok
}

// Hosts returns every host that has reported, sorted by name.
func (s *Store) Hosts() []HostInfo {
	s.mu.RLock()
	out := make([]HostInfo, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, h)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HostNames returns the name of every host that has reported, sorted.
func (s *Store) HostNames() []string {
	s.mu.RLock()
	out := make([]string, 0, len(s.hosts))
	for name := range s.hosts {
		out = append(out, name)
	}
	s.mu.RUnlock()
	sort.Strings(out)
	return out
}
