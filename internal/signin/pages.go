package signin

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
)

// style is the pages' one stylesheet, inline; the Content-Security-Policy
// allows exactly it by its hash, and nothing else inline.
const style = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
code,kbd{font-size:1.1em}.code{font-size:1.6rem;letter-spacing:.2em;font-family:monospace}button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}`

// csp is the pages' Content-Security-Policy: no script, the one style.
var csp = func() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

// The pages are plain HTML: links and forms, no script, so that every step
// works without JavaScript (and in a terminal browser).
var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · berth</title>
<style>` + style + `</style>
</head><body>{{end}}
{{define "foot"}}</body></html>{{end}}

{{define "login"}}{{template "head" "Sign in"}}
<h1>Sign in to berth</h1>
{{if .Who}}<p>Signed in as <strong>{{.Who}}</strong>.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit">Sign out</button></form>
{{end}}
{{if .Providers}}<ul>{{range .Providers}}<li><a href="/login/{{.Name}}{{if $.Next}}?next={{$.Next}}{{end}}">Sign in with {{.Name}}</a> <small>({{.Issuer}})</small></li>{{end}}</ul>
{{else}}<p>No identity provider is set up. An owner adds one with <code>berth idp add NAME --issuer URL --client-id ID --client-secret-stdin</code>.</p>{{end}}
{{template "foot"}}{{end}}

{{define "logout"}}{{template "head" "Sign out"}}
<h1>Sign out</h1>
{{if .Who}}<p>Signed in as <strong>{{.Who}}</strong>.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit">Sign out</button></form>
{{else}}<p>You are not signed in. <a href="/login">Sign in</a></p>{{end}}
{{template "foot"}}{{end}}

{{define "device-code"}}{{template "head" "Device login"}}
<h1>Log in a device</h1>
<p>Type the code that <code>berth login</code> printed.</p>
<form method="get" action="/device"><label>Code <input name="user_code" autocomplete="off" autofocus placeholder="BCDF-GHJK"></label> <button type="submit">Continue</button></form>
{{template "foot"}}{{end}}

{{define "device-approve"}}{{template "head" "Approve device login"}}
<h1>Approve this login?</h1>
<p>A program calling itself <strong>{{.Client}}</strong> asks to act as <strong>{{.Who}}</strong> on <strong>{{.Host}}</strong>, with your roles, until your session ends at {{.Expires}}.</p>
<p>Started {{.Ago}} ago ({{.Started}}){{if .Source}} from <strong>{{.Source}}</strong>{{if eq .Source .Here}}, the address this browser comes from{{else}}; this browser comes from {{.Here}}{{end}}{{end}}.</p>
<p>Code: <span class="code">{{.UserCode}}</span></p>
<p>Approve only if you started this login yourself, just now, and your terminal shows the same code. If someone sent you this link, deny it: approving gives them your access.</p>
<form method="post" action="/device">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="user_code" value="{{.UserCode}}">
<button type="submit" name="decision" value="approve">Approve</button><button type="submit" name="decision" value="deny">Deny</button>
</form>
{{template "foot"}}{{end}}

{{define "done"}}{{template "head" .Title}}
<h1>{{.Title}}</h1><p>{{.Text}}</p>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" "Sign-in failed"}}
<h1>Sign-in failed</h1>
<p>{{.Message}}</p>
{{if .Hint}}<p>Try: <code>{{.Hint}}</code></p>{{end}}
<p><small>Reason: <code>{{.Code}}</code> (<code>berth explain {{.Code}}</code>){{if .RequestID}}, request id {{.RequestID}}{{end}}</small></p>
<p><a href="/login">Start again</a></p>
{{template "foot"}}{{end}}
`))

// render writes the page name with status.
func render(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY") // the approval form must not be framed (clickjacking)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}
