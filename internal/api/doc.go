// Package api is berth's management API under /api/v1/: JSON over HTTP for
// principals, their client secrets, role assignments and access checks, as
// the CLI (through internal/client) and, later, the web console use it.
//
// It also manages people: identity providers (/api/v1/idps, their client
// secrets sealed and never shown), group role assignments (/api/v1/roles
// with "group"), and a person's personal access tokens (/api/v1/tokens).
//
// Every request is authenticated by the oauth.Provider (Basic CLIENT_ID:SECRET
// or a Bearer access token) and authorized against the caller's current role
// assignments: principals and secrets are managed by owners of the registry
// scope, roles by owners of the scope they are assigned on. Handlers return an
// error, which one function renders as {"error":{"code","message","hint"}}
// with the status of the code table.
//
// It must never decide a rule itself (names, lifetimes, scopes and decisions
// are package berth's), never persist anything but through the store, and
// never let a secret's value or hash reach a log line or any response but the
// one that creates the secret.
package api
