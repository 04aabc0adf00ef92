//go:build linux

package blobs

import (
	"os"
	"syscall"
	"unsafe"
)

// directAlign is the alignment O_DIRECT wants of offsets, lengths and
// buffers.
const directAlign = 4096

// openForChunk opens a new chunk file for writing data. When data's
// length and address are aligned it asks for O_DIRECT: the bytes go from
// the buffer to the device without a copy into the page cache, which is
// most of a large upload's CPU on some machines (a chunk is written once
// and read back rarely, so the cache gains little). Filesystems without
// O_DIRECT (tmpfs) get a plain file.
func openForChunk(path string, data []byte) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if len(data) > 0 && len(data)%directAlign == 0 && uintptr(unsafe.Pointer(&data[0]))%directAlign == 0 {
		f, err := os.OpenFile(path, flags|syscall.O_DIRECT, 0o644)
		if err == nil {
			return f, nil
		}
		if !os.IsExist(err) {
			_ = os.Remove(path)
		}
	}
	return os.OpenFile(path, flags, 0o644)
}
