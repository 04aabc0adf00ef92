package diskspace

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fakeDisk is a filesystem whose free space the test sets; it counts the
// readings.
type fakeDisk struct {
	mu          sync.Mutex
	free, total uint64
	reads       int
}

func (d *fakeDisk) usage(string) (vfs.DiskUsage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	return vfs.DiskUsage{AvailBytes: d.free, TotalBytes: d.total}, nil
}

func (d *fakeDisk) set(free uint64) {
	d.mu.Lock()
	d.free = free
	d.mu.Unlock()
}

func (d *fakeDisk) readings() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const mib = 1 << 20

func newGuard(t *testing.T, d *fakeDisk, floor Floor, log *bytes.Buffer) (*Guard, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var w bytes.Buffer
	if log == nil {
		log = &w
	}
	g, err := New(Config{
		Dirs: []Dir{{"index", "/i"}, {"blobs", "/b"}}, Floor: floor,
		Logger: slog.New(slog.NewTextHandler(log, nil)), Usage: d.usage, Now: clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, clock
}

func TestFloorOf(t *testing.T) {
	for _, tc := range []struct {
		f    Floor
		size uint64
		want uint64
	}{
		{Floor{}, 100 << 30, 0},
		{Floor{Bytes: 1 << 30}, 100 << 30, 1 << 30},
		{Floor{Percent: 5}, 100 << 30, 5 << 30},
		{Floor{Bytes: 1 << 30, Percent: 5}, 100 << 30, 1 << 30},
		{Floor{Bytes: 1 << 30, Percent: 5}, 64 * mib, 64 * mib / 20},
	} {
		if got := tc.f.Of(tc.size); got != tc.want {
			t.Errorf("%v of %d = %d; want %d", tc.f, tc.size, got, tc.want)
		}
	}
}

func TestGuardFloorAndReserve(t *testing.T) {
	d := &fakeDisk{free: 100 * mib, total: 1000 * mib}
	var log bytes.Buffer
	g, clock := newGuard(t, d, Floor{Bytes: 40 * mib}, &log)
	if !g.Admit(mib) || g.BelowFloor() || g.BelowReserve() {
		t.Fatal("refused with room above the floor")
	}
	if g.Admit(70 * mib) {
		t.Fatal("admitted a write that takes the free space below the floor")
	}
	d.set(30 * mib)
	clock.advance(2 * time.Second)
	if g.Admit(0) || !g.BelowFloor() || g.BelowReserve() {
		t.Fatalf("between reserve and floor: admit %v, below floor %v, below reserve %v", g.Admit(0), g.BelowFloor(), g.BelowReserve())
	}
	if !strings.Contains(log.String(), "below the floor") {
		t.Fatalf("crossing the floor not logged: %q", log.String())
	}
	d.set(10 * mib)
	clock.advance(20 * time.Second)
	if !g.BelowReserve() {
		t.Fatal("not below the reserve (half the floor)")
	}
	if !strings.Contains(log.String(), "below the reserve") {
		t.Fatalf("crossing the reserve not logged: %q", log.String())
	}
	d.set(50 * mib)
	clock.advance(20 * time.Second)
	if !g.Admit(mib) || g.BelowFloor() || g.BelowReserve() {
		t.Fatal("still refusing once space returned")
	}
	if !strings.Contains(log.String(), "above the floor") {
		t.Fatalf("return above the floor not logged: %q", log.String())
	}
}

// TestGuardReadsAgainWhenAdmittedWritesMayHaveUsedTheRoom: within MaxAge
// the guard trusts its reading, unless the writes it admitted since could
// have used up the room above the floor.
func TestGuardReadsAgainWhenAdmittedWritesMayHaveUsedTheRoom(t *testing.T) {
	d := &fakeDisk{free: 100 * mib, total: 1000 * mib}
	g, _ := newGuard(t, d, Floor{Bytes: 40 * mib}, nil)
	start := d.readings()
	for range 50 {
		if !g.Admit(mib) {
			t.Fatal("refused with room above the floor")
		}
	}
	if n := d.readings() - start; n != 0 {
		t.Fatalf("%d readings for writes that fit the room", n)
	}
	// The disk filled by what was admitted and more.
	d.set(45 * mib)
	if !g.Admit(5*mib) || g.Admit(20*mib) {
		t.Fatal("the admitted writes did not bring a fresh reading")
	}
	if d.readings() == start {
		t.Fatal("no fresh reading")
	}
}

func TestGuardLogsCrossingsAtMostEveryTenSeconds(t *testing.T) {
	d := &fakeDisk{free: 100 * mib, total: 1000 * mib}
	var log bytes.Buffer
	g, clock := newGuard(t, d, Floor{Bytes: 40 * mib}, &log)
	for i := range 20 {
		d.set(uint64(20+40*(i%2)) * mib)
		clock.advance(time.Second + time.Millisecond)
		g.Admit(0)
	}
	if n := strings.Count(log.String(), "\n"); n < 1 || n > 2 {
		t.Fatalf("%d lines for 20 crossings in 20 seconds; want one or two:\n%s", n, log.String())
	}
}

func TestGuardWithoutFloorAdmitsEverything(t *testing.T) {
	d := &fakeDisk{free: 0, total: 1000 * mib}
	g, _ := newGuard(t, d, Floor{}, nil)
	if !g.Admit(mib) || g.BelowFloor() || g.BelowReserve() {
		t.Fatal("a guard without a floor refused")
	}
}

func TestGuardRefusesAFloorAsLargeAsTheDisk(t *testing.T) {
	d := &fakeDisk{free: 10 * mib, total: 64 * mib}
	if _, err := New(Config{Dirs: []Dir{{"index", "/i"}}, Floor: Floor{Bytes: 64 * mib}, Usage: d.usage}); err == nil {
		t.Fatal("a floor of the whole disk was taken")
	}
	if _, err := New(Config{Dirs: []Dir{{"index", "/i"}}, Floor: Floor{Percent: 60}, Usage: d.usage}); err == nil {
		t.Fatal("a floor of 60% was taken")
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 64 << 20: "64 MiB", 1<<40 + 1<<38: "1.25 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q; want %q", n, got, want)
		}
	}
}

// TestGuardRoomy: roomy means at least twice the floor free on every
// directory; without a floor nothing is known, so never roomy.
func TestGuardRoomy(t *testing.T) {
	d := &fakeDisk{free: 100 * mib, total: 1000 * mib}
	g, clock := newGuard(t, d, Floor{Bytes: 40 * mib}, nil)
	if !g.Roomy() {
		t.Fatal("100 MiB free against a 40 MiB floor: not roomy")
	}
	d.set(79 * mib)
	clock.advance(2 * time.Second)
	if g.Roomy() || g.BelowFloor() {
		t.Fatalf("79 MiB free against a 40 MiB floor: roomy %v, below the floor %v; want neither", g.Roomy(), g.BelowFloor())
	}
	none, _ := newGuard(t, &fakeDisk{free: 900 * mib, total: 1000 * mib}, Floor{}, nil)
	if none.Roomy() {
		t.Fatal("roomy without a floor")
	}
}
