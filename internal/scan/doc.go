// Package scan finds credentials in files and in the whole history of git
// repositories: berth client secrets and refresh tokens (found by prefix and
// confirmed by checksum with the root package's own rules, so a look-alike is
// never reported), private keys, docker config auths entries, AWS access key
// ids, GitHub, GitLab and Azure secrets, and JWTs. It writes what it finds as
// text, JSON or SARIF 2.1.0, and a JSON report serves as a baseline of
// accepted findings.
//
// It finds candidates with a few fast substring searches over each buffer and
// only then verifies them, so it reads at memory speed rather than running
// regular expressions over every byte. History is read with the git command
// (rev-list and cat-file --batch), never a Go reimplementation of git.
//
// It must never print, log or serialise a credential it finds: a Finding
// holds a redacted excerpt and a fingerprint (a hash of kind and value), and
// the value itself only behind Finding.Secret, for revocation. It changes
// nothing it scans and talks to no server.
package scan
