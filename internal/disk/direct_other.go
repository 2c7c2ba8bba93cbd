//go:build !linux

package disk

import (
	"errors"
	"os"
)

// setDirect turns nothing on where berth does not use direct I/O: writes go
// through the page cache.
func setDirect(f *os.File, on bool) error {
	if on {
		return errors.ErrUnsupported
	}
	return nil
}

func isDirect(f *os.File) bool { return false }

// directAlign is the alignment writes are cut at where direct I/O is used;
// here nothing is written directly (directAligned is false), so it only
// keeps the write path the same on every system.
const directAlign = 4096

func directAligned(b []byte) bool { return false }

func alignedBuffer(n int) []byte { return make([]byte, n) }
