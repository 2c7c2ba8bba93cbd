//go:build unix

package s3

import "syscall"

// mapBuffer maps size bytes of anonymous memory, outside the Go heap; only
// the pages written count towards the resident set.
func mapBuffer(size int64) ([]byte, bool) {
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	return b, err == nil
}
