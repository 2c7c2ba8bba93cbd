// Package cluster makes berth serve processes sharing one PostgreSQL
// database behave as one registry: a change to principals, secrets, roles or
// connections made through one replica reaches every replica's caches at
// once (LISTEN/NOTIFY), the secret-hashing pepper is shared (sealed with the
// key encryption key), and scheduled jobs run on one replica at a time
// (session advisory locks, released when a replica dies).
//
// It only wires what internal/postgres provides into the identity provider
// and the schedules of serve; it must never hold a rule of the domain, nor
// read the environment.
package cluster
