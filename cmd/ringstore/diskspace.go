package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringstore/ringstore/internal/bench"
	"github.com/ringstore/ringstore/internal/diskspace"
)

// defaultMinFree keeps a gigabyte free on a large disk, and on a small one
// a share that still leaves it most of its space.
const defaultMinFree = "1GiB,5%"

// parseMinFree reads --min-free: a size, a percentage of the filesystem,
// or both separated by a comma (the smaller applies), or 0 for no floor.
func parseMinFree(s string) (diskspace.Floor, error) {
	bad := func() (diskspace.Floor, error) {
		return diskspace.Floor{}, fmt.Errorf("--min-free %q: want a size (2GiB), a percentage of the filesystem up to 50%% (5%%), both separated by a comma (the smaller applies), or 0", s)
	}
	var f diskspace.Floor
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return bad()
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if pct, ok := strings.CutSuffix(p, "%"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
			if err != nil || !(v >= 0 && v <= 50) || f.Percent != 0 {
				return bad()
			}
			f.Percent = v
			continue
		}
		n, err := bench.ParseSize(p)
		if err != nil || f.Bytes != 0 {
			return bad()
		}
		f.Bytes = uint64(n)
	}
	// "0,5%" would read as "5%": a zero asks for no floor at all.
	if len(parts) == 2 && (f.Bytes == 0 || f.Percent == 0) {
		return bad()
	}
	return f, nil
}

// newDiskGuard watches the free space of the index's and the chunks'
// directories, which it creates so that a mount point beneath the data
// directory is measured, not the disk above it.
func newDiskGuard(data string, floor diskspace.Floor, log *slog.Logger) (*diskspace.Guard, error) {
	var dirs []diskspace.Dir
	for _, name := range []string{"index", "blobs"} {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		dirs = append(dirs, diskspace.Dir{Name: name, Path: p})
	}
	g, err := diskspace.New(diskspace.Config{Dirs: dirs, Floor: floor, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--min-free: %w", err)
	}
	return g, nil
}
