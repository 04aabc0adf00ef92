// stream_test.go checks the framed transport: calls and errors round-trip
// over one port shared with HTTP; many concurrent calls share connections;
// a node with another secret is refused in the handshake, both ways; a
// connection for another node id is refused; a connection dropped mid-call
// fails the call instead of hanging it.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type streamNode struct {
	s    *Stream
	addr string
	ln   *Listener
}

func startStream(t *testing.T, self, secret string, addrs map[string]string, mu *sync.Mutex) *streamNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := NewMux()
	mux.Handle("echo", func(_ context.Context, from string, body []byte) ([]byte, error) {
		return append([]byte(from+":"), body...), nil
	})
	mux.Handle("fail", func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("boom") })
	mux.Handle("slow", func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		time.Sleep(200 * time.Millisecond)
		return nil, nil
	})
	s := &Stream{Self: self, Secret: []byte(secret), Mux: mux, Logger: log,
		Resolve: func(n string) (string, bool) { mu.Lock(); defer mu.Unlock(); a, ok := addrs[n]; return a, ok }}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, s)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "plain http") })}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = ln.Close(); s.Close() })
	mu.Lock()
	addrs[self] = raw.Addr().String()
	mu.Unlock()
	return &streamNode{s: s, addr: raw.Addr().String(), ln: ln}
}

func TestStreamCalls(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	got, err := a.s.Call(context.Background(), "b", "echo", []byte("hi"))
	if err != nil || string(got) != "a:hi" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	var re *RemoteError
	if _, err := a.s.Call(context.Background(), "b", "fail", nil); !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("remote failure = %v", err)
	}
	// The same port still answers HTTP.
	resp, err := http.Get("http://" + b.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "plain http" {
		t.Fatalf("HTTP on the RPC port = %q", body)
	}
	// Many concurrent calls, big and small, over the pooled connections.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(strings.Repeat(fmt.Sprint(i%10), 1+(i%7)*50000))
			got, err := a.s.Call(context.Background(), "b", "echo", payload)
			if err == nil && string(got) != "a:"+string(payload) {
				err = fmt.Errorf("call %d: reply of %d bytes differs", i, len(got))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every successful call counted, with its bytes both ways.
	want := ServiceStats{Calls: 1, SentBytes: 2, ReceivedBytes: 4}
	for i := 0; i < 200; i++ {
		n := int64(1 + (i%7)*50000)
		want.Calls++
		want.SentBytes += n
		want.ReceivedBytes += n + 2
	}
	if got := a.s.Stats.Snapshot()["echo"]; got != want {
		t.Fatalf("echo stats %+v, want %+v", got, want)
	}
	// A cancelled call returns promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.s.Call(ctx, "b", "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call = %v", err)
	}
}

func TestStreamWrongSecret(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "one", addrs, &mu)
	startStream(t, "b", "two", addrs, &mu)
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err == nil {
		t.Fatal("a node with another secret was served")
	}
	// Addressed to the wrong node id.
	mu.Lock()
	addrs["c"] = addrs["b"]
	mu.Unlock()
	b2 := startStream(t, "b2", "one", addrs, &mu)
	mu.Lock()
	addrs["d"] = b2.addr
	mu.Unlock()
	if _, err := a.s.Call(context.Background(), "d", "echo", nil); err == nil {
		t.Fatal("a connection meant for another node was served")
	}
}

func TestStreamConnectionDrop(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.s.Call(context.Background(), "b", "slow", nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// Drop every client connection of a.
	a.s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a call on a dropped connection succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call on a dropped connection hangs")
	}
	// New calls dial again.
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
		t.Fatalf("call after reconnect: %v", err)
	}
	_ = b
}

func BenchmarkStreamRoundTrip(b *testing.B) {
	var mu sync.Mutex
	addrs := map[string]string{}
	t := &testing.T{}
	a := startStream(t, "a", "k", addrs, &mu)
	startStream(t, "b", "k", addrs, &mu)
	// One caller: the latency of a round trip with nothing to batch it
	// with (the writer's yield before flushing must cost nothing here).
	b.Run("serial/64B", func(b *testing.B) {
		b.ReportAllocs()
		body := make([]byte, 64)
		for b.Loop() {
			if _, err := a.s.Call(context.Background(), "b", "echo", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, size := range []int{64, 4096} {
		body := make([]byte, size)
		b.Run(map[int]string{64: "64B", 4096: "4KiB"}[size], func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.s.Call(context.Background(), "b", "echo", body); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
