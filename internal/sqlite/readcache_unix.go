//go:build unix

package sqlite

import (
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// mapHeader maps the first page of f, the -shm file, read-only and shared,
// so that reading the wal-index header costs no system call; nil when it
// cannot be mapped.
func mapHeader(f *os.File) []byte {
	b, err := syscall.Mmap(int(f.Fd()), 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

func unmapHeader(b []byte) error { return syscall.Munmap(b) }

// readMapped returns the wal-index header's iVersion, isInit and iChange
// from b, or ok false if reading faults (a file cut short under the
// mapping: SQLite never does so while this process has the database open).
func readMapped(b []byte) (version uint32, isInit byte, change uint32, ok bool) {
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if recover() != nil {
			ok = false
		}
	}(debug.SetPanicOnFault(true))
	version = atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0])))
	change = atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[8])))
	return version, b[12], change, true
}
