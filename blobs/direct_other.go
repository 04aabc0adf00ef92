//go:build !linux

package blobs

import "os"

func openForChunk(path string, _ []byte) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}
