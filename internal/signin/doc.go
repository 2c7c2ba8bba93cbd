// Package signin signs people in through the company's identity providers:
// berth as an OpenID Connect relying party (the authorization code flow with
// PKCE, state and nonce), the browser session that results (an HttpOnly
// cookie), the pages of the sign-in and of the device authorization grant's
// verification (RFC 8628 section 3.3), and the creation of a person's
// principal at their first sign-in, with their groups at each.
//
// The console builds on the session: the cookie SessionCookie, resolved by
// oauth.Provider.AuthenticateSession to the *berth.Caller it acts as (with
// the live checks of every credential), and berth.SessionCSRF(cookie) as
// the csrf field of every form that changes something.
//
// Every page is plain HTML with forms, and works without JavaScript. Every
// form that changes something carries a csrf field derived from the session
// cookie. It never decides who may do what (package berth and the oauth
// Provider do, for sessions as for every other credential), never writes a
// client secret, a provider's token, a code or a cookie's value into a log,
// an error or a page, and calls a provider only where the outbound policy
// allows.
package signin
