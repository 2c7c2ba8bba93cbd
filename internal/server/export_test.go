package server

import (
	"io"
	"time"
)

// NewLogBufferAfter is NewLogBuffer with after in place of time.AfterFunc.
func NewLogBufferAfter(w io.Writer, after func(time.Duration, func())) *LogBuffer {
	b := NewLogBuffer(w)
	b.after = after
	return b
}
