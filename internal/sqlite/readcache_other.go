//go:build !unix

package sqlite

import "os"

// mapHeader maps nothing here: the header is read with ReadAt.
func mapHeader(*os.File) []byte { return nil }

func unmapHeader([]byte) error { return nil }

func readMapped([]byte) (uint32, byte, uint32, bool) { return 0, 0, 0, false }
