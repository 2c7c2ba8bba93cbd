package berth

import (
	"net/url"
	"strconv"
)

// queryCredentialParams are the parameters whose value is a credential,
// whatever it looks like.
var queryCredentialParams = []string{"client_secret", "password", "refresh_token", "client_assertion", "assertion", "subject_token", "actor_token"}

// QueryCredential returns where the URL query q carries a credential, or ""
// when it carries none: a parameter named like one (client_secret, password,
// refresh_token, client_assertion, assertion, subject_token, actor_token), or a parameter name or value
// holding more of a credential berth issues than its hint, or a JWT
// (the rule by which logs redact). The answer names the parameter, never the
// value.
func QueryCredential(q url.Values) string {
	for _, name := range queryCredentialParams {
		if q.Has(name) {
			return "parameter " + name
		}
	}
	for name, values := range q {
		if holdsCredential(name) {
			return "a parameter's name"
		}
		for _, v := range values {
			if holdsCredential(v) {
				return "the value of parameter " + strconv.Quote(Truncate(name, 40))
			}
		}
	}
	return ""
}

// RefuseQueryCredential returns invalid when the URL query q carries a
// credential (QueryCredential): a URL is written to proxy and access logs and
// kept in shell and browser history, so the credential must be treated as
// exposed. The message names where it was, never the value; the hint says how
// to send it instead and how to replace it.
func RefuseQueryCredential(q url.Values) error {
	where := QueryCredential(q)
	if where == "" {
		return nil
	}
	return Errorf(CodeInvalid, "the URL's query string carries a credential (%s); proxies and access logs record URLs and shells keep them in history, so berth refuses credentials there", where).
		WithHint("send the client id and secret as Basic credentials (docker login HOST -u CLIENT_ID --password-stdin), or run berth login HOST; never put them in the URL. Treat this secret as exposed: berth secret add PRINCIPAL, then berth secret remove PRINCIPAL SECRET_ID")
}
