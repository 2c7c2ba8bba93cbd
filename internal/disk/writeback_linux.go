package disk

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing the range to disk without
// waiting for it (sync_file_range with SYNC_FILE_RANGE_WRITE), so that writeback
// overlaps with receiving and hashing the rest. It is advice: durability still
// comes from fsync, so an error is ignored.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 0x2
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}
