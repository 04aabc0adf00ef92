package rpc

import (
	"sync"
	"sync/atomic"
)

// Stats counts the calls this node made as a client and their request and
// reply bytes, per service, and the connections it refused as a server.
// Every call adds to it, so it takes no lock once a service has been seen.
type Stats struct {
	m       sync.Map // service name -> *serviceCounters
	refused atomic.Int64
}

// Refused is the number of incoming connections refused in their
// handshake.
func (s *Stats) Refused() int64 { return s.refused.Load() }

type serviceCounters struct {
	calls, sent, received atomic.Int64
}

// ServiceStats are the counts of one service.
type ServiceStats struct {
	Calls, SentBytes, ReceivedBytes int64
}

func (s *Stats) add(service string, sent, received int) {
	v, ok := s.m.Load(service)
	if !ok {
		v, _ = s.m.LoadOrStore(service, &serviceCounters{})
	}
	c := v.(*serviceCounters)
	c.calls.Add(1)
	c.sent.Add(int64(sent))
	c.received.Add(int64(received))
}

// Snapshot returns the counts, by service name. Counts of one service are
// read one after the other, not at one instant.
func (s *Stats) Snapshot() map[string]ServiceStats {
	out := map[string]ServiceStats{}
	s.m.Range(func(k, v any) bool {
		c := v.(*serviceCounters)
		out[k.(string)] = ServiceStats{Calls: c.calls.Load(), SentBytes: c.sent.Load(), ReceivedBytes: c.received.Load()}
		return true
	})
	return out
}
