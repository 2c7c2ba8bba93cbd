package berth

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id that logs, error responses
// and audit events quote.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Caller is who a request acts as, once authenticated: a principal, or the
// anonymous actor when the request carried no credentials.
type Caller struct {
	Actor Actor
	// Principal is nil for the anonymous caller.
	Principal *Principal
	// Token is the access token the request presented; nil for Basic
	// credentials, which act with all the principal's roles.
	Token *AccessClaims
	// CredentialID is the secret the caller proved, or the service
	// connection (Connection.CredentialID) it came through.
	CredentialID string
	// Connection, Pipeline and Run name the service connection, the pipeline
	// and the CI run of a federated caller, and PipelineID is the pipeline's
	// ID; "" otherwise.
	Connection string
	Pipeline   string
	PipelineID string
	Run        string
	// RunURL is the CI run's web page when the ID token's claims name one
	// (Assertion.RunURL): set at the exchange only, for its audit event.
	RunURL string
	// Limit, when not nil, is what a personal access token was created for:
	// the caller may do nothing outside it, whatever its roles allow.
	Limit []ResourceActions
}

// Anonymous reports whether the caller presented no credentials.
func (c *Caller) Anonymous() bool { return c == nil || c.Principal == nil }

type callerKey struct{}

// WithCaller returns ctx carrying the authenticated caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller carried by ctx, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

type authenticatedKey struct{}

// WithAuthenticatedHook returns ctx carrying mark, which Authenticated calls:
// the server uses it to stop counting a connection among those that no
// request proved a credential on.
func WithAuthenticatedHook(ctx context.Context, mark func()) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, mark)
}

// Authenticated tells the server that the request of ctx proved a credential
// (a client secret, an access or refresh token, a CI ID token). Whoever
// authenticates calls it; without a hook in ctx it does nothing.
func Authenticated(ctx context.Context) {
	if mark, ok := ctx.Value(authenticatedKey{}).(func()); ok {
		mark()
	}
}
