// limits_test.go checks what an authenticated peer can make a node hold:
// a frame's buffer grows with the bytes that arrive, not with the length
// it declares, and a connection's requests in service are bounded in
// bytes.
package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadFrameAllocatesAsBytesArrive: a frame that declares the largest
// length and sends 1 MiB of it costs the reader about what arrived, not
// what was declared.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	hdr := writeFrames(t, []frame{{id: 1, kind: kindRequest, service: "blobs", payload: make([]byte, MaxBodyBytes)}})[:frameHeaderLen+len("blobs")]
	in := append(hdr, make([]byte, 1<<20)...)
	sc := newStreamConn(nil, bufio.NewReader(bytes.NewReader(in)), nil, "client", defaultWriteTimeout)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := sc.readFrame(nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated frame read as %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Fatalf("reading 1 MiB of a frame declared as %d MiB allocated %d MiB", MaxBodyBytes>>20, n>>20)
	}
}

// TestServeBoundsRequestsInService: a peer that sends requests faster
// than they are served has at most maxServingBytes of them read; the rest
// wait in its socket until requests finish.
func TestServeBoundsRequestsInService(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cw, client, sw, server := tlsPair(t, a, b)
	release := make(chan struct{})
	var entered, finished counter
	s := &Stream{Self: "b", Mux: NewMux()}
	s.Mux.Handle("hold", func(context.Context, string, []byte) ([]byte, error) {
		entered.add()
		<-release
		finished.add()
		return nil, nil
	})
	go s.serveFrames(sw, server, Peer{Role: RoleNode, ID: "a"})
	w := newTLSStreamConn(cw, client, "b", time.Minute)
	const size, calls = 1 << 20, maxServingBytes/(1<<20) + 16
	go func() {
		for i := range calls {
			if err := w.writeFrame(frame{id: uint64(i + 1), kind: kindRequest, service: "hold", payload: make([]byte, size)}, false); err != nil {
				return
			}
		}
	}()
	entered.waitFor(t, maxServingBytes/size)
	// Let the reader run on if it would: it must not.
	for range 50 {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := entered.get(); n != maxServingBytes/size {
		t.Fatalf("%d requests of 1 MiB in service, want %d", n, maxServingBytes/size)
	}
	close(release)
	go func() {
		for {
			if _, err := w.readFrame(nil); err != nil {
				return
			}
		}
	}()
	finished.waitFor(t, calls)
}

// counter counts events that tests wait for.
type counter struct{ n atomic.Int64 }

func (c *counter) add()       { c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }

// waitFor waits until the count reaches n.
func (c *counter) waitFor(t *testing.T, n int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("count reaches %d", n), func() bool { return c.n.Load() >= n })
}

// eventually waits for cond, failing the test if it has not come true
// after a minute: a guard against hanging, not a measure of speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after a minute: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
