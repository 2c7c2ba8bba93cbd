package disk

import (
	"os"
	"syscall"
	"unsafe"
)

// directAlign is what direct I/O needs a write's memory, length and file
// offset to be a multiple of: 4096 covers the logical block size of every
// disk.
const directAlign = 4096

// setDirect turns direct I/O (O_DIRECT) on or off for f's later writes.
// Turning it on fails where the file system does not support it; the
// caller then writes through the page cache as before.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if e != 0 {
			serr = e
			return
		}
		if on {
			flags |= syscall.O_DIRECT
		} else {
			flags &^= syscall.O_DIRECT
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags); e != 0 {
			serr = e
		}
	})
	if err == nil {
		err = serr
	}
	return err
}

// isDirect reports whether direct I/O is on for f.
func isDirect(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var flags uintptr
	var e syscall.Errno
	if rc.Control(func(fd uintptr) { flags, _, e = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0) }) != nil || e != 0 {
		return false
	}
	return flags&syscall.O_DIRECT != 0
}

// directAligned reports whether b may be written with direct I/O (at an
// aligned offset).
func directAligned(b []byte) bool {
	return len(b)%directAlign == 0 && (len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%directAlign == 0)
}

// alignedBuffer returns n bytes whose first one is aligned for direct I/O.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		off = directAlign - r
	}
	return b[off : off+n : off+n]
}
