// Package server runs berth's one HTTP port: it binds the listener, gives every
// request an id that logs and error bodies quote, logs one line per request,
// answers /healthz, mounts the protocol handlers and shuts down gracefully.
//
// It never implements a protocol itself and never renders a domain error: the
// handlers it mounts do both.
package server
