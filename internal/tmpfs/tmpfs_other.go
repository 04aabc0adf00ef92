//go:build !linux

// Package tmpfs gives tests a small filesystem of their own, to fill up.
package tmpfs

import "testing"

// Mount skips the test: only Linux mounts a tmpfs here.
func Mount(t testing.TB, size int64) string {
	t.Skip("skipped: the test needs a small tmpfs to fill, which only Linux mounts here")
	return ""
}

// Fill is not reached: Mount skipped the test.
func Fill(t testing.TB, path string) int64 {
	t.Skip("skipped: needs Linux")
	return 0
}
