//go:build linux

package blobs

import (
	"encoding/binary"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// sumAttr names the extended attribute holding a chunk file's fast
// checksum (see fastSum).
const sumAttr = "user.ringstore.xxh64"

// readSum returns the fast checksum stored with f, if it has one.
func readSum(f *os.File) (uint64, bool) {
	var b [8]byte
	n, err := unix.Fgetxattr(int(f.Fd()), sumAttr, b[:])
	if err != nil || n != len(b) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]), true
}

// writeSum stores sum with f. It reports false when the filesystem keeps
// no extended attributes, so callers stop trying; reads then verify by
// SHA-256 alone, as they did before chunks carried a fast checksum.
func writeSum(f *os.File, sum uint64) (supported bool) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sum)
	err := unix.Fsetxattr(int(f.Fd()), sumAttr, b[:], 0)
	return !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP)
}

// removeSum deletes f's checksum (tests: a chunk from before checksums).
func removeSum(f *os.File) error { return unix.Fremovexattr(int(f.Fd()), sumAttr) }
