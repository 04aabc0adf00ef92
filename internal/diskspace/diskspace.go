// Package diskspace keeps a node's disks from filling up: a Guard watches
// the free space of the data directories and says when it is below the
// floor, where the node stops taking new data, or below the reserve, half
// the floor, where it stops every index write. Between the two, deletes
// and the records that keep the cluster consistent still get through, so
// that space can be freed; below the reserve the index's log keeps the
// room it needs to make its writes durable.
package diskspace

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Floor is a free-space threshold: a byte count, a share of the
// filesystem's size, or the smaller of both. The zero Floor is none.
type Floor struct {
	Bytes   uint64
	Percent float64 // 0 to 50
}

// Of returns the floor for a filesystem of size bytes.
func (f Floor) Of(size uint64) uint64 {
	floor := f.Bytes
	if f.Percent > 0 {
		p := uint64(float64(size) * f.Percent / 100)
		if floor == 0 || p < floor {
			floor = p
		}
	}
	return floor
}

func (f Floor) String() string {
	pct := strconv.FormatFloat(f.Percent, 'f', -1, 64) + "%"
	switch {
	case f.Bytes > 0 && f.Percent > 0:
		return fmt.Sprintf("the lesser of %s and %s", Bytes(f.Bytes), pct)
	case f.Percent > 0:
		return pct
	}
	return Bytes(f.Bytes)
}

// Bytes renders n in the largest binary unit that keeps it readable.
func Bytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	num := strings.TrimRight(strconv.FormatFloat(v, 'f', 2, 64), "0")
	return strings.TrimSuffix(num, ".") + " " + units[i]
}

// Dir is a directory whose filesystem is watched.
type Dir struct {
	Name string // for logs and metrics: "index", "blobs"
	Path string
}

// Config configures a Guard.
type Config struct {
	Dirs  []Dir
	Floor Floor
	// MaxAge is how long a reading of the free space is trusted; 0 means
	// a second. Writes admitted meanwhile are counted against it.
	MaxAge time.Duration
	Logger *slog.Logger
	// Usage reads a directory's filesystem; nil means the real one.
	Usage func(path string) (vfs.DiskUsage, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DirSpace is one directory's free space at the last reading.
type DirSpace struct {
	Name                string
	Free, Floor, Size   uint64
	BelowFloor, Reserve bool // below the floor; below the reserve
}

type reading struct {
	at   time.Time
	dirs []DirSpace
	// room is the least free space above the floor over the directories,
	// negative below it; reserveRoom the same above the reserve.
	room, reserveRoom int64
}

// Guard answers whether the node may take new data. It is cheap to ask:
// the filesystems are read at most every MaxAge, and sooner only when the
// writes admitted since the last reading could have used up the room
// above the floor.
type Guard struct {
	cfg Config
	cur atomic.Pointer[reading]
	// admitted counts the bytes admitted since the current reading.
	admitted atomic.Int64
	mu       sync.Mutex // one reading at a time

	// The last state logged and when; guarded by mu.
	loggedBelow, loggedReserve bool
	loggedAt                   time.Time
}

// logEvery bounds how often a crossing of the floor or the reserve is
// logged, should the free space hover around it.
const logEvery = 10 * time.Second

// New returns a Guard, having read every directory's filesystem once. A
// floor that takes the whole of a filesystem is refused: nothing could
// ever be written.
func New(cfg Config) (*Guard, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Usage == nil {
		cfg.Usage = vfs.Default.GetDiskUsage
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Floor.Percent < 0 || cfg.Floor.Percent > 50 {
		return nil, fmt.Errorf("free-space floor %v%%: want 0 to 50%%", cfg.Floor.Percent)
	}
	g := &Guard{cfg: cfg}
	r, err := g.read()
	if err != nil {
		return nil, err
	}
	for _, d := range r.dirs {
		if d.Floor > 0 && d.Floor >= d.Size {
			return nil, fmt.Errorf("free-space floor %s is not less than the whole %s filesystem of the %s directory", Bytes(d.Floor), Bytes(d.Size), d.Name)
		}
	}
	g.cur.Store(r)
	g.mu.Lock()
	g.logCrossing(r)
	g.mu.Unlock()
	return g, nil
}

func (g *Guard) read() (*reading, error) {
	r := &reading{at: g.cfg.Now()}
	for i, d := range g.cfg.Dirs {
		u, err := g.cfg.Usage(d.Path)
		if err != nil {
			return nil, fmt.Errorf("free space of %s: %w", d.Path, err)
		}
		floor := g.cfg.Floor.Of(u.TotalBytes)
		reserve := floor / 2
		ds := DirSpace{Name: d.Name, Free: u.AvailBytes, Floor: floor, Size: u.TotalBytes,
			BelowFloor: u.AvailBytes < floor, Reserve: u.AvailBytes < reserve}
		r.dirs = append(r.dirs, ds)
		room, reserveRoom := int64(u.AvailBytes)-int64(floor), int64(u.AvailBytes)-int64(reserve)
		if i == 0 || room < r.room {
			r.room = room
		}
		if i == 0 || reserveRoom < r.reserveRoom {
			r.reserveRoom = reserveRoom
		}
	}
	return r, nil
}

// reading returns a reading no older than MaxAge, or, given stale, one
// newer than stale.
func (g *Guard) reading(stale *reading) *reading {
	usable := func(r *reading) bool {
		if stale != nil {
			return r != stale
		}
		return g.cfg.Now().Sub(r.at) < g.cfg.MaxAge
	}
	if r := g.cur.Load(); usable(r) {
		return r
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.cur.Load()
	if usable(r) {
		return r // read by another caller meanwhile
	}
	nr, err := g.read()
	if err != nil {
		// A filesystem that cannot be read is no reason to stop
		// writes: the last reading stands until the next try.
		g.cfg.Logger.Warn("free space unknown", "err", err)
		nr = &reading{at: g.cfg.Now(), dirs: r.dirs, room: r.room, reserveRoom: r.reserveRoom}
	}
	g.admitted.Store(0)
	g.cur.Store(nr)
	g.logCrossing(nr)
	return nr
}

// Admit reports whether the node may take a write of n bytes (0 when not
// known): false when the free space is below the floor, or would fall
// below it with n more bytes.
func (g *Guard) Admit(n int64) bool {
	if g.cfg.Floor == (Floor{}) {
		return true
	}
	n = max(n, 0)
	r := g.reading(nil)
	if r.room <= 0 {
		return false
	}
	if g.admitted.Add(n) <= r.room {
		return true
	}
	// The writes admitted since the reading may have used up the room:
	// read again.
	r = g.reading(r)
	return r.room > 0 && g.admitted.Add(n) <= r.room
}

// Roomy reports whether the free space is at least twice the floor: far
// enough from it that writes in flight cannot use the rest up before the
// next reading. Without a floor nothing is known, and it answers false.
func (g *Guard) Roomy() bool {
	if g.cfg.Floor == (Floor{}) {
		return false
	}
	r := g.reading(nil)
	for _, d := range r.dirs {
		if d.Free < 2*d.Floor {
			return false
		}
	}
	return true
}

// BelowFloor reports whether the free space is below the floor.
func (g *Guard) BelowFloor() bool { return g.reading(nil).room <= 0 && g.cfg.Floor != (Floor{}) }

// BelowReserve reports whether the free space is below the reserve.
func (g *Guard) BelowReserve() bool {
	return g.reading(nil).reserveRoom < 0 && g.cfg.Floor != (Floor{})
}

// Space returns each directory's free space, read afresh if the last
// reading is older than MaxAge.
func (g *Guard) Space() []DirSpace { return g.reading(nil).dirs }

// logCrossing logs when the free space crossed the floor or the reserve
// since the last line it logged, at most every logEvery; g.mu is held.
func (g *Guard) logCrossing(r *reading) {
	below, reserve := false, false
	for _, d := range r.dirs {
		below = below || d.BelowFloor
		reserve = reserve || d.Reserve
	}
	now := g.cfg.Now()
	if below == g.loggedBelow && reserve == g.loggedReserve {
		return
	}
	if !g.loggedAt.IsZero() && now.Sub(g.loggedAt) < logEvery {
		return
	}
	g.loggedBelow, g.loggedReserve, g.loggedAt = below, reserve, now
	attrs := []any{}
	for _, d := range r.dirs {
		attrs = append(attrs, d.Name+"_free_bytes", d.Free, d.Name+"_floor_bytes", d.Floor)
	}
	switch {
	case reserve:
		g.cfg.Logger.Error("free disk space below the reserve: refusing new data and every index write, deletes included; free space outside the node or add disk", attrs...)
	case below:
		g.cfg.Logger.Warn("free disk space below the floor (--min-free): refusing new data; reads and deletes go on", attrs...)
	default:
		g.cfg.Logger.Info("free disk space above the floor: taking new data", attrs...)
	}
}
