// Package oauth holds berth's token machinery: the signing keys and their JWKS,
// access tokens as signed JWTs (sign and verify), refresh tokens (issue and
// redeem), the failed-attempt limiter of the token endpoint, and the OpenID
// Connect discovery document. The /oauth2/token handler is built on these.
//
// Keys. A Keyring keeps its keys in a folder (DATA/keys), one JSON file of mode
// 0600 per key, named after its RFC 7638 thumbprint, which is also the token
// header's kid. New keys are ES256; Rotate adds one and retires the previous
// key, which keeps verifying (and stays in the JWKS) until every token it
// signed has expired, then Prune deletes it.
//
// Access tokens carry the Docker token "access" claim and berth's own
// credential_id, have typ at+jwt (RFC 9068) and are verified against an
// allow-list of algorithms (ES256, EdDSA: never none, never an HMAC), the kid's
// key, the issuer, the audience, and exp/nbf/iat with a 30-second Leeway.
// Verified tokens are cached, bounded, until they expire.
//
// Federation. A Federation verifies CI jobs' OIDC ID tokens (github.com/coreos/go-oidc)
// against the keys their issuer publishes, discovered and cached per issuer,
// or against a key set registered with the pipeline; Provider.Exchange turns
// a verified token into a caller acting as a service connection's principal,
// and the token endpoint takes it as an RFC 7523 client assertion or an
// RFC 8693 token exchange, or at /oauth2/exchange in the shape of Azure
// Container Registry's (grant_type=access_token, answered with a refresh
// token). It never calls an issuer no registered pipeline names, nor a URL
// berth.ValidateOutboundURL refuses.
//
// This package never decides who may do what, and never looks at a principal's
// or a credential's current state: the caller applies the identity and access
// rules of package berth before it signs a token or redeems a refresh token,
// and again on every request that carries one. It never writes a token, a
// refresh token value or a key into an error or a log; its refusals are
// *berth.Error values with the codes token_invalid, token_expired,
// refresh_token_invalid and too_many_attempts, and for federation
// assertion_invalid, assertion_expired and the pipeline and connection codes.
package oauth
