// Package lifecycle enforces berth's lifecycle rules while the registry
// serves: immutable tags and quotas on every push and delete (it implements
// oci.Lifecycle), and the record of tag pushes and manifest pulls that
// retention reads. The rules themselves are functions of the root package;
// this package only feeds them what the stores hold, caches the rules for a
// moment so a push costs no extra query, and batches pull times so a pull
// costs no write.
package lifecycle
