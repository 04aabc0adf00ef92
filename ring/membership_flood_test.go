package ring

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringstore/ringstore/internal/lograte"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// TestGarbageAtGossipPortIsLoggedAtABoundedRate: memberlist logs every
// packet and stream it cannot read. Hundreds of garbage UDP packets and
// TCP connections at a node's gossip port must write a few lines per kind
// and a summary of the rest, not a line each.
func TestGarbageAtGossipPortIsLoggedAtABoundedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	logs := &syncBuffer{}
	addr := freePort(t)
	m, err := StartMembership(MembershipConfig{
		Self: "g1", Member: Member{ID: "g1", Zone: "z", Weight: 1, Addr: "rpc-g1"},
		GossipAddr: addr, Secret: []byte("secret"), Partitions: 16, Replicas: 1,
		Save:     func(*ClusterLayout) error { return nil },
		OnChange: func(*View) {},
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Fast:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.mu.Lock()
		close(m.stop)
		m.mu.Unlock()
		_ = m.ml.Shutdown()
	})
	before := len(logs.lines())

	const floods = 300
	start := time.Now()
	udp, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 32)
	for i := range floods {
		garbage[0] = byte(i)
		if _, err := udp.Write(garbage); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(garbage)
		_ = c.Close()
	}

	// The suppressed lines are reported a period after the first of them.
	deadline := time.Now().Add(2*lograte.DefaultPeriod + time.Minute)
	suppressed := 0
	for suppressed == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		for _, l := range logs.lines()[before:] {
			if strings.Contains(l, "similar log lines suppressed") {
				suppressed++
			}
		}
	}
	elapsed := time.Since(start)
	if suppressed == 0 {
		t.Fatalf("no summary of suppressed lines:\n%s", strings.Join(logs.lines()[before:], "\n"))
	}
	kinds := map[string]bool{}
	var lines []string
	for _, l := range logs.lines()[before:] {
		if strings.Contains(l, "component=memberlist") && !strings.Contains(l, "similar log lines suppressed") {
			lines = append(lines, l)
			_, msg, _ := strings.Cut(l, "msg=")
			kinds[lograte.Kind(strings.Trim(msg, `"`))] = true
		}
	}
	// Each kind writes its burst and one line a period, however slowly
	// this machine sent the flood.
	bound := len(kinds) * (lograte.DefaultBurst + int(elapsed/lograte.DefaultPeriod) + 1)
	if len(lines) == 0 || len(lines) > bound || len(lines) >= floods {
		t.Fatalf("%d memberlist lines for %d garbage packets and connections (bound %d, kinds %v):\n%s",
			len(lines), 2*floods, bound, kinds, strings.Join(lines, "\n"))
	}
	t.Logf("%d lines of %d kinds, %d summaries, for %d garbage packets and connections", len(lines), len(kinds), suppressed, 2*floods)
}
