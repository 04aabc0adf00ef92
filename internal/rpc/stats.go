package rpc

import (
	"sort"
	"sync"
)

// Stats counts request and reply bytes per service.
type Stats struct {
	mu sync.Mutex // guards m
	m  map[string]*ServiceStats
}

// ServiceStats are the counts of one service.
type ServiceStats struct {
	Calls, SentBytes, ReceivedBytes int64
}

func (s *Stats) add(service string, sent, received int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*ServiceStats{}
	}
	c := s.m[service]
	if c == nil {
		c = &ServiceStats{}
		s.m[service] = c
	}
	c.Calls++
	c.SentBytes += int64(sent)
	c.ReceivedBytes += int64(received)
}

// Snapshot returns a copy of the counts, by service name.
func (s *Stats) Snapshot() map[string]ServiceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ServiceStats, len(s.m))
	for k, v := range s.m {
		out[k] = *v
	}
	return out
}

// Services lists the services counted, sorted.
func (s *Stats) Services() []string {
	snap := s.Snapshot()
	out := make([]string, 0, len(snap))
	for k := range snap {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
