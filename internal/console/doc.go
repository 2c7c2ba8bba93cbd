// Package console is berth's web console, served at / by berth serve:
// server-rendered pages (html/template, assets embedded with go:embed) for
// the people who run the registry. What needs attention, principals and
// their secrets, service connections, and "Why not?" for a refused access.
//
// It is an adapter of the management API, never a second implementation of
// it: every page reads and every form changes through the /api/v1 handler,
// called in process as the person of the browser's session
// (api.WithAuthenticated), so that the same rules decide and the same audit
// records. Deleting a tag or a manifest is the one exception: it goes
// through the /v2/ handler (Registry.ServeAs), as the person's own
// DELETE /v2/NAME/manifests/REF would, so that the registry's authorization,
// immutable-tag rules, audit event and webhooks apply, which the API's tag
// delete does not know. Sessions are the sign-in's (internal/signin); the console starts
// one itself only for the break-glass sign-in with a client id and secret,
// through signin.Service.StartSession.
//
// It must never show a secret value anywhere but in the answer to the form
// that made it (with Cache-Control: no-store), never put one in a URL or a
// log, and never change anything on a GET or without the session's csrf
// field.
package console
