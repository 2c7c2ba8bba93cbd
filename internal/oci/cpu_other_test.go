//go:build !unix

package oci_test

import (
	"testing"
	"time"
)

// processCPU is zero where the process's CPU time is not read: the
// benchmarks' CPU figures then read 0.
func processCPU(b *testing.B) time.Duration { return 0 }
