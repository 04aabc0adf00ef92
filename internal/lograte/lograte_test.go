package lograte

import (
	"bytes"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTime is a clock moved by hand, whose timers run when it passes them.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func (c *fakeTime) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeTime) AfterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), f})
}

func (c *fakeTime) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t.f)
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

type report struct {
	kind   string
	n      int
	level  slog.Level
	sample string
}

func newTestLimiter(burst int, period time.Duration) (*Limiter, *fakeTime, *[]report) {
	clock := &fakeTime{now: time.Unix(1_000_000, 0)}
	var reports []report
	l := NewLimiter(burst, period, func(kind string, n int, level slog.Level, sample string) {
		reports = append(reports, report{kind, n, level, sample})
	})
	l.now, l.afterFunc = clock.Now, clock.AfterFunc
	return l, clock, &reports
}

func TestLimiterBurstThenRateThenReport(t *testing.T) {
	l, clock, reports := newTestLimiter(5, 10*time.Second)
	allowed := 0
	for i := range 300 {
		if l.Allow("bad packet", slog.LevelWarn, fmt.Sprintf("bad packet %d", i)) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of a flood's lines allowed at once, want the burst of 5", allowed)
	}
	if !l.Allow("other kind", slog.LevelWarn, "other kind") {
		t.Fatal("another kind of line is held back by the flood")
	}
	clock.Advance(5 * time.Second)
	if len(*reports) != 0 || l.Allow("bad packet", slog.LevelWarn, "x") {
		t.Fatalf("half a period later: reports %v", *reports)
	}
	clock.Advance(5 * time.Second)
	want := report{"bad packet", 296, slog.LevelWarn, "bad packet 5"}
	if len(*reports) != 1 || (*reports)[0] != want {
		t.Fatalf("reports %v, want %v", *reports, want)
	}
	// A period refilled one line.
	if !l.Allow("bad packet", slog.LevelDebug, "y") || l.Allow("bad packet", slog.LevelDebug, "z") {
		t.Fatal("one line per period after the burst")
	}
	clock.Advance(10 * time.Second)
	if len(*reports) != 2 || (*reports)[1].n != 1 || (*reports)[1].level != slog.LevelDebug {
		t.Fatalf("reports %v", *reports)
	}
	// Quiet for long enough, the whole burst is back, and nothing is due.
	clock.Advance(time.Minute)
	for i := range 5 {
		if !l.Allow("bad packet", slog.LevelWarn, "again") {
			t.Fatalf("line %d of a new burst refused", i)
		}
	}
	if len(*reports) != 2 {
		t.Fatalf("reports %v", *reports)
	}
}

// A sustained flood writes its burst, then one line and one report per
// period, however many lines come.
func TestLimiterSustainedFloodIsBounded(t *testing.T) {
	l, clock, reports := newTestLimiter(5, 10*time.Second)
	allowed := 0
	for range 60 { // ten minutes, a line every 100 ms per kind
		for range 100 {
			clock.Advance(100 * time.Millisecond)
			if l.Allow("flood", slog.LevelInfo, "flood") {
				allowed++
			}
		}
	}
	clock.Advance(10 * time.Second)
	suppressed := 0
	for _, r := range *reports {
		suppressed += r.n
	}
	if allowed+suppressed != 6000 {
		t.Fatalf("%d allowed + %d suppressed, want every line counted", allowed, suppressed)
	}
	if allowed > 5+60+1 || len(*reports) > 60+1 {
		t.Fatalf("%d lines and %d reports in ten minutes", allowed, len(*reports))
	}
}

func TestLimiterBoundsKinds(t *testing.T) {
	l, clock, reports := newTestLimiter(1, time.Second)
	for i := range 3 * maxKinds {
		k := fmt.Sprintf("kind %d", i)
		l.Allow(k, slog.LevelInfo, k)
		l.Allow(k, slog.LevelInfo, k) // suppressed: the kind owes a report
	}
	if len(l.kinds) > maxKinds+1 { // and the shared one
		t.Fatalf("%d kinds remembered", len(l.kinds))
	}
	clock.Advance(time.Second)
	if len(*reports) == 0 {
		t.Fatal("no report")
	}
	// Once reported and refilled, old kinds make room for new ones.
	clock.Advance(time.Minute)
	if !l.Allow("a new kind", slog.LevelInfo, "a new kind") || l.kinds["a new kind"] == nil {
		t.Fatal("a new kind has no bucket of its own")
	}
}

func TestKind(t *testing.T) {
	for line, want := range map[string]string{
		"[ERR] memberlist: Decrypt packet failed: cipher: message authentication failed from=127.0.0.1:4000":   "[ERR] memberlist: Decrypt packet failed",
		"[ERR] memberlist: failed to receive: Unknown message type (%d) from=127.0.0.1:5":                      "[ERR] memberlist: failed to receive",
		"[ERR] memberlist: missing message type byte from=127.0.0.1:4000":                                      "[ERR] memberlist: missing message type byte from=",
		"[WARN] memberlist: Got ping for unexpected node 'x' from=127.0.0.1:1":                                 "[WARN] memberlist: Got ping for unexpected node ",
		"http: TLS handshake error from 127.0.0.1:40222: tls: first record does not look like a TLS handshake": "http: TLS handshake error from ",
		"http: TLS handshake error from [::1]:40222: EOF":                                                      "http: TLS handshake error from [",
		"no prefix here 12": "no prefix here ",
		"":                  "",
	} {
		if got := Kind(line); got != want {
			t.Errorf("Kind(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestWriter runs a log.Logger into a Writer as memberlist and net/http
// do: each line keeps its level, a flood is cut to its burst, and a level
// the logger does not write is not counted either.
func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	sl := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := NewWriter(sl, func(line string) slog.Level {
		if strings.HasPrefix(line, "[ERR]") {
			return slog.LevelWarn
		}
		return slog.LevelDebug
	})
	lg := log.New(w, "", 0)
	for i := range 200 {
		lg.Printf("[ERR] memberlist: Decrypt packet failed: bad from=127.0.0.1:%d", 1000+i)
		lg.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:%d", 1000+i)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != DefaultBurst {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, `msg="[ERR] memberlist: Decrypt packet failed: bad from=127.0.0.1:`) {
			t.Fatalf("line %q", l)
		}
	}
}
