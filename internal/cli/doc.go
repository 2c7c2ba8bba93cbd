// Package cli is berth's command line: one file per command group, and
// serve.go, the composition root where configuration becomes constructed
// stores, handlers and the server. It reads the environment only through
// loadConfig, and never holds a rule of the domain.
package cli
