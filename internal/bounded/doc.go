// Package bounded holds caches of a fixed size for what a process may
// forget at any time: losing an entry costs the caller a read, never a
// wrong answer. Map forgets its oldest entry first.
//
// It must never block on anything but its own mutex, nor grow past its
// bound.
package bounded
