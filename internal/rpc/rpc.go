// Package rpc carries node-to-node requests: a byte-level Transport that
// index and blobs encode their own messages onto, its implementation over
// mutually authenticated TLS 1.3 (Stream, with certificates derived from
// the cluster secret), and a Mux that routes incoming requests to the
// services that registered for them. Admin tools speak the same protocol.
//
// Every request is idempotent at the service level (merges, reads, chunk
// writes of content-addressed data), so the transport may retry or deliver
// twice; it promises only that a reply, if one arrives, is the reply of the
// named node to this request.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Transport sends one request to a node's service and returns its reply.
// An error means the request may or may not have been applied.
// Implementations are safe for concurrent use.
type Transport interface {
	Call(ctx context.Context, to, service string, body []byte) ([]byte, error)
}

// Handler serves one service. from is the authenticated sender.
type Handler func(ctx context.Context, from string, body []byte) ([]byte, error)

// Mux routes requests to registered services.
type Mux struct {
	mu       sync.RWMutex // guards handlers
	handlers map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[string]Handler{}} }

// Handle registers h for service, replacing any earlier handler.
func (m *Mux) Handle(service string, h Handler) {
	m.mu.Lock()
	m.handlers[service] = h
	m.mu.Unlock()
}

// ErrUnknownService is returned for a service nobody registered.
var ErrUnknownService = errors.New("rpc: unknown service")

// Serve runs the handler of service.
func (m *Mux) Serve(ctx context.Context, from, service string, body []byte) ([]byte, error) {
	m.mu.RLock()
	h := m.handlers[service]
	m.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownService, service)
	}
	return h(ctx, from, body)
}

// RemoteError is an error returned by the remote handler (as opposed to a
// failure to reach it).
type RemoteError struct {
	Node, Service, Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("rpc %s on %s: %s", e.Service, e.Node, e.Message)
}

// Local is a Transport that serves calls to self from a Mux directly and
// passes the rest to next (which may be nil in a one-node cluster).
type Local struct {
	Self string
	Mux  *Mux
	Next Transport
}

// Call implements Transport.
func (l *Local) Call(ctx context.Context, to, service string, body []byte) ([]byte, error) {
	if to == l.Self {
		return l.Mux.Serve(ctx, l.Self, service, body)
	}
	if l.Next == nil {
		return nil, fmt.Errorf("rpc: no transport to reach %s", to)
	}
	return l.Next.Call(ctx, to, service, body)
}
