package rpc

import (
	"context"
	"errors"
	"testing"
)

func TestMuxWrap(t *testing.T) {
	m := NewMux()
	m.Handle("echo", func(_ context.Context, _ string, body []byte) ([]byte, error) { return body, nil })
	refused := errors.New("refused")
	err := m.Wrap("echo", func(h Handler) Handler {
		return func(ctx context.Context, from string, body []byte) ([]byte, error) {
			if string(body) == "no" {
				return nil, refused
			}
			return h(ctx, from, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := m.Serve(context.Background(), "a", "echo", []byte("yes")); err != nil || string(b) != "yes" {
		t.Fatalf("wrapped handler = %q, %v", b, err)
	}
	if _, err := m.Serve(context.Background(), "a", "echo", []byte("no")); !errors.Is(err, refused) {
		t.Fatalf("wrapper's refusal = %v", err)
	}
	if err := m.Wrap("nosuch", func(h Handler) Handler { return h }); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("wrap of an unknown service = %v", err)
	}
}
