//go:build !linux

package s3test

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's: Server.Close stops versitygw, and a killed test binary
// leaves it running.
func dieWithParent(cmd *exec.Cmd) {}
