package berth

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ConnectionAuth is how a service connection authenticates.
type ConnectionAuth string

const (
	// ConnectionFederated connections hold no secret: a permitted pipeline
	// presents its CI ID token and berth verifies it.
	ConnectionFederated ConnectionAuth = "federated"
	// ConnectionSecret connections authenticate with a client secret of their
	// principal, which berth tracks and renews (berth connection save).
	ConnectionSecret ConnectionAuth = "secret"
)

// ParseConnectionAuth returns the scheme s names, or invalid.
func ParseConnectionAuth(s string) (ConnectionAuth, error) {
	switch a := ConnectionAuth(s); a {
	case ConnectionFederated, ConnectionSecret:
		return a, nil
	}
	return "", Errorf(CodeInvalid, "connection authentication %q is unknown; it is %s or %s", Truncate(s, 40), ConnectionFederated, ConnectionSecret)
}

// DefaultSessionLifetime is how long a federated login lasts: the refresh
// token a CI ID token is exchanged for expires after it, so one short-lived CI
// token carries a long job.
const DefaultSessionLifetime = 6 * time.Hour

// DefaultRenewalGrace is how long a connection's previous secret keeps
// working after berth connection save renewed it.
const DefaultRenewalGrace = 7 * 24 * time.Hour

// ConnectionIntent is what a connection is meant for: Docker actions ("pull",
// "push", "delete") on a repository or a namespace pattern such as team/*.
// berth connection verify checks that the connection's principal holds roles
// covering each.
type ConnectionIntent struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

// Connection is a service connection: what a pipeline names to reach the
// registry. It acts as its principal, with that principal's roles;
// federated connections let the pipelines they permit in with their CI ID
// token, secret connections with a client secret of the principal.
type Connection struct {
	ID          string         `json:"id"`   // a UUID
	Name        string         `json:"name"` // see ValidateConnectionName
	PrincipalID string         `json:"principal_id"`
	Auth        ConnectionAuth `json:"auth"`
	// Intents are the repositories and actions the connection is meant for.
	Intents []ConnectionIntent `json:"intents,omitempty"`
	// AllPipelines permits every registered pipeline; otherwise Pipelines
	// lists the IDs of those permitted, in the order they were permitted.
	AllPipelines bool     `json:"all_pipelines"`
	Pipelines    []string `json:"pipelines,omitempty"`
	// SecretID is the current secret of a secret connection; "" for a
	// federated one.
	SecretID string `json:"secret_id,omitempty"`
	// Disabled connections refuse every exchange, and the tokens they issued
	// stop working at their next check.
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created_at"`
}

// ValidateConnectionName returns invalid unless name follows the rules of a
// principal name.
func ValidateConnectionName(name string) error { return validateName("connection", name) }

// connectionCredentialPrefix starts the credential id of tokens issued through
// a federated connection.
const connectionCredentialPrefix = "connection:"

// CredentialID is the credential id that tokens issued through c carry:
// removing or disabling c stops them.
func (c Connection) CredentialID() string { return connectionCredentialPrefix + c.ID }

// ConnectionIDOf returns the connection id a credential id names, and whether
// it names one (rather than a secret id).
func ConnectionIDOf(credentialID string) (string, bool) {
	return strings.CutPrefix(credentialID, connectionCredentialPrefix)
}

// NewConnection returns an enabled connection named name acting as
// principalID, with a fresh ID drawn from rand, created at now. It returns
// invalid for a bad name, scheme or intent.
func NewConnection(rand io.Reader, name, principalID string, auth ConnectionAuth, intents []ConnectionIntent, now time.Time) (Connection, error) {
	if err := ValidateConnectionName(name); err != nil {
		return Connection{}, err
	}
	if _, err := ParseConnectionAuth(string(auth)); err != nil {
		return Connection{}, err
	}
	for _, in := range intents {
		if err := in.Validate(); err != nil {
			return Connection{}, err
		}
	}
	id, err := newUUID(rand)
	if err != nil {
		return Connection{}, fmt.Errorf("new connection %s: %w", name, err)
	}
	return Connection{ID: id, Name: name, PrincipalID: principalID, Auth: auth, Intents: intents, Created: now}, nil
}

// Validate returns invalid unless the intent names a repository (or a
// namespace pattern, NS/*) and at least one of pull, push and delete.
func (in ConnectionIntent) Validate() error {
	if s, err := ParseScope(in.Repository); err != nil || s.Kind() == ScopeRegistry {
		return Errorf(CodeInvalid, "the connection's repository %q is not a repository or a pattern such as team/*", Truncate(in.Repository, 80)).
			WithHint("write --repository team/app --actions pull,push")
	}
	if len(in.Actions) == 0 {
		return Errorf(CodeInvalid, "the connection's repository %s names no action", in.Repository).
			WithHint("add --actions pull,push")
	}
	for _, a := range in.Actions {
		if DockerActionNeeds(a) == nil {
			return Errorf(CodeInvalid, "the connection's action %q on %s is not pull, push or delete", Truncate(a, 40), in.Repository).
				WithHint("write --actions pull,push")
		}
	}
	return nil
}

// Permits reports whether pipelineID may use the connection.
func (c Connection) Permits(pipelineID string) bool {
	return c.AllPipelines || slices.Contains(c.Pipelines, pipelineID)
}

// Usable returns nil when pipeline p may exchange its ID token through c, and
// otherwise connection_disabled, or pipeline_not_authorized naming the
// command that permits it. A secret connection is refused with invalid: it
// takes a client secret, not an ID token.
func (c Connection) Usable(p Pipeline) error {
	switch {
	case c.Disabled:
		return Errorf(CodeConnectionDisabled, "service connection %s is disabled", c.Name).
			WithHint("berth connection enable %s", c.Name).WithDetail("connection", c.Name)
	case c.Auth == ConnectionSecret:
		return Errorf(CodeInvalid, "service connection %s authenticates with a client secret, not with a CI ID token", c.Name).
			WithHint("berth connection convert %s --to federated", c.Name).WithDetail("connection", c.Name)
	case !c.Permits(p.ID):
		return Errorf(CodePipelineNotAuthorized, "pipeline %s is not permitted to use service connection %s; the request was recorded", p.Name, c.Name).
			WithHint("berth connection permit %s --pipeline %s", c.Name, p.Name).
			WithDetail("connection", c.Name).WithDetail("pipeline", p.Name)
	}
	return nil
}

// ConnectionUnknown is the refusal of an exchange naming no connection, or one
// that does not exist.
func ConnectionUnknown(name string) *Error {
	if name == "" {
		return Errorf(CodeConnectionUnknown, "the request names no service connection").
			WithHint("send connection=NAME (or client_id=NAME) with the client assertion; berth connection list shows the names")
	}
	return Errorf(CodeConnectionUnknown, "no service connection is named %q", Truncate(name, 64)).
		WithHint("berth connection list shows the connections; berth connection create %s --principal P creates it", Truncate(name, 64)).
		WithDetail("connection", Truncate(name, 64))
}

// PermissionRequest is a registered pipeline's attempt to use a connection
// that does not permit it, kept until the pipeline is permitted or removed.
type PermissionRequest struct {
	ConnectionID string    `json:"connection_id"`
	PipelineID   string    `json:"pipeline_id"`
	First        time.Time `json:"first_at"`
	Last         time.Time `json:"last_at"`
	Count        int       `json:"count"`
	// Run identifies the CI run of the last attempt (Assertion.Run).
	Run string `json:"run,omitempty"`
}

// ConnectionStore persists service connections, the pipelines they permit and
// the permission requests pending on them. It decides nothing.
type ConnectionStore interface {
	// CreateConnection stores c with its permitted pipelines. It returns
	// not_found when no principal has c.PrincipalID, conflict when a connection
	// with its ID or Name exists; either way nothing changes.
	CreateConnection(ctx context.Context, c Connection) error
	// FindConnectionByID returns the connection with this ID, or not_found.
	FindConnectionByID(ctx context.Context, id string) (Connection, error)
	// FindConnectionByName returns the connection with this name, or not_found.
	FindConnectionByName(ctx context.Context, name string) (Connection, error)
	// FindConnections returns the connections f selects, ordered by name.
	FindConnections(ctx context.Context, f ConnectionFilter) ([]Connection, error)
	// UpdateConnection applies the set fields of u and returns the connection
	// as it now is, or not_found.
	UpdateConnection(ctx context.Context, id string, u ConnectionUpdate) (Connection, error)
	// DeleteConnection removes the connection, its permissions and its pending
	// requests, or returns not_found.
	DeleteConnection(ctx context.Context, id string) error
	// PermitPipeline adds the pipeline to the connection's permitted list (a
	// no-op when it is there) and removes its pending request. It returns
	// not_found when the connection or the pipeline does not exist.
	PermitPipeline(ctx context.Context, connectionID, pipelineID string) error
	// ForbidPipeline removes the pipeline from the permitted list; a no-op when
	// it is not there. not_found when the connection does not exist.
	ForbidPipeline(ctx context.Context, connectionID, pipelineID string) error
	// RecordPermissionRequest records an attempt: a new request with Count 1,
	// First and Last set to r.Last, or, when one is pending for the same
	// connection and pipeline, Count incremented and Last and Run updated.
	// not_found when the connection or pipeline does not exist.
	RecordPermissionRequest(ctx context.Context, r PermissionRequest) error
	// FindPermissionRequests returns the requests pending on the connection,
	// ordered by First.
	FindPermissionRequests(ctx context.Context, connectionID string) ([]PermissionRequest, error)
	// DismissPermissionRequest removes the pipeline's pending request on the
	// connection without permitting it (its next attempt records a new one);
	// not_found when none is pending.
	DismissPermissionRequest(ctx context.Context, connectionID, pipelineID string) error
}

// ConnectionFilter selects connections; the zero filter selects all.
type ConnectionFilter struct {
	// PrincipalID, when set, selects connections acting as this principal.
	PrincipalID string
}

// ConnectionUpdate holds the fields UpdateConnection changes; nil means
// unchanged.
type ConnectionUpdate struct {
	Auth         *ConnectionAuth
	SecretID     *string
	AllPipelines *bool
	Disabled     *bool
}
