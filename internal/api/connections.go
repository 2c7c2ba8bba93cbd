package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// IntentRequest is one intent of a new connection: a repository (or NS/*)
// and the Docker actions (pull, push, delete) the connection is meant for
// there.
type IntentRequest struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

// CreateConnectionRequest is the body of POST /api/v1/connections.
type CreateConnectionRequest struct {
	Name string `json:"name"`
	// Principal is the name of the principal the connection acts as.
	Principal string `json:"principal"`
	// Auth is "federated" (the default) or "secret".
	Auth    string          `json:"auth,omitempty"`
	Intents []IntentRequest `json:"intents,omitempty"`
	// ExpiresIn is the lifetime of a secret connection's secret, as
	// berth.ParseLifetime reads it; empty means the default, 90 days.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// PermissionChange is the body of POST /api/v1/connections/{name}/authorize,
// /unauthorize and /permit: one pipeline by name, or all of them.
type PermissionChange struct {
	Pipeline     string `json:"pipeline,omitempty"`
	AllPipelines bool   `json:"all_pipelines,omitempty"`
}

// RenewRequest is the optional body of POST /api/v1/connections/{name}/save.
type RenewRequest struct {
	// Grace is how long the previous secret keeps working, as
	// berth.ParseLifetime reads it, or "0" to end it at once; empty means
	// berth.DefaultRenewalGrace.
	Grace string `json:"grace,omitempty"`
	// ExpiresIn is the new secret's lifetime; empty means 90 days.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// ConvertRequest is the body of POST /api/v1/connections/{name}/convert.
type ConvertRequest struct {
	// To is "federated" or "secret".
	To string `json:"to"`
	// Grace and ExpiresIn are as in RenewRequest: the previous secret's grace
	// period (to federated), the new secret's lifetime (to secret).
	Grace     string `json:"grace,omitempty"`
	ExpiresIn string `json:"expires_in,omitempty"`
}

// ConnectionSecret is a secret connection's current secret as the API shows
// it: never its value.
type ConnectionSecret struct {
	ID      string            `json:"id"`
	Hint    string            `json:"hint"`
	State   berth.SecretState `json:"state"`
	Expires time.Time         `json:"expires_at"`
}

// Connection is a service connection as the API shows it: its principal and
// its permitted pipelines by name.
type Connection struct {
	ID          string                   `json:"id"`
	Name        string                   `json:"name"`
	Principal   string                   `json:"principal"`
	PrincipalID string                   `json:"principal_id"`
	Auth        berth.ConnectionAuth     `json:"auth"`
	Intents     []berth.ConnectionIntent `json:"intents"`
	// AllPipelines permits every registered pipeline; otherwise Pipelines
	// names those permitted, in the order they were permitted.
	AllPipelines bool     `json:"all_pipelines"`
	Pipelines    []string `json:"pipelines"`
	// Secret is the current secret of a secret connection.
	Secret   *ConnectionSecret `json:"secret,omitempty"`
	Disabled bool              `json:"disabled"`
	Created  time.Time         `json:"created_at"`
}

// ConnectionList is the answer of GET /api/v1/connections, ordered by name.
type ConnectionList struct {
	Connections []Connection `json:"connections"`
}

// ConnectionDetail is the answer of GET /api/v1/connections/{name}.
type ConnectionDetail struct {
	Connection
	// PendingRequests counts the pipelines that tried to use the connection
	// without being permitted (GET …/requests lists them).
	PendingRequests int `json:"pending_requests"`
}

// PreviousSecret is the secret a renewal or conversion replaced, and when it
// stops working.
type PreviousSecret struct {
	ID      string    `json:"id"`
	Hint    string    `json:"hint"`
	Expires time.Time `json:"expires_at"`
}

// ConnectionChange is the answer of the endpoints that change a connection:
// the connection as it now is and, when a secret was made, its value (shown
// this once), and the secret it replaced.
type ConnectionChange struct {
	Connection
	NewSecret      *NewSecret      `json:"new_secret,omitempty"`
	PreviousSecret *PreviousSecret `json:"previous_secret,omitempty"`
}

// DeletedConnection is the answer of DELETE /api/v1/connections/{name}.
type DeletedConnection struct {
	Connection
	// SecretRevoked is set when the connection's secret was revoked with it.
	SecretRevoked        bool `json:"secret_revoked"`
	RefreshTokensRevoked int  `json:"refresh_tokens_revoked"`
}

// PermissionRequest is a pending permission request as the API shows it.
type PermissionRequest struct {
	Pipeline   string    `json:"pipeline"`
	PipelineID string    `json:"pipeline_id"`
	First      time.Time `json:"first_at"`
	Last       time.Time `json:"last_at"`
	Count      int       `json:"count"`
	// Run identifies the CI run of the last attempt.
	Run string `json:"run,omitempty"`
}

// PermissionRequestList is the answer of GET /api/v1/connections/{name}/requests.
type PermissionRequestList struct {
	Connection string              `json:"connection"`
	Requests   []PermissionRequest `json:"requests"`
}

// HistoryEvent is one use of (or change to) a connection, from the audit log.
type HistoryEvent struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Pipeline string    `json:"pipeline"`
	CIRun    string    `json:"ci_run"`
	// CIRunURL is the run's web page, when the ID token named one.
	CIRunURL string            `json:"ci_run_url,omitempty"`
	Action   berth.AuditAction `json:"action"`
	Target   string            `json:"target"`
	Result   berth.AuditResult `json:"result"`
	Reason   berth.Code        `json:"reason"`
	// Message is the refusal's facts; "" when allowed.
	Message string `json:"message,omitempty"`
}

// ConnectionHistory is the answer of GET /api/v1/connections/{name}/history:
// the latest events, oldest first.
type ConnectionHistory struct {
	Connection string         `json:"connection"`
	Events     []HistoryEvent `json:"events"`
}

// Bounds of the connection endpoints.
const (
	maxIntents      = 32
	maxRenewalGrace = 90 * 24 * time.Hour
	defaultHistory  = 100
)

func (h *handler) routeConnections() {
	h.handle("POST /api/v1/connections", h.createConnection)
	h.handle("GET /api/v1/connections", h.listConnections)
	h.handle("GET /api/v1/connections/{name}", h.showConnection)
	h.handle("DELETE /api/v1/connections/{name}", h.deleteConnection)
	h.handle("POST /api/v1/connections/{name}/authorize", h.authorizeConnection)
	h.handle("POST /api/v1/connections/{name}/unauthorize", h.unauthorizeConnection)
	h.handle("POST /api/v1/connections/{name}/permit", h.permitConnection)
	h.handle("POST /api/v1/connections/{name}/dismiss", h.dismissRequest)
	h.handle("GET /api/v1/connections/{name}/requests", h.connectionRequests)
	h.handle("POST /api/v1/connections/{name}/disable", h.disableConnection)
	h.handle("POST /api/v1/connections/{name}/enable", h.enableConnection)
	h.handle("POST /api/v1/connections/{name}/save", h.saveConnection)
	h.handle("POST /api/v1/connections/{name}/convert", h.convertConnection)
	h.handle("GET /api/v1/connections/{name}/verify", h.verifyConnection)
	h.handle("GET /api/v1/connections/{name}/history", h.connectionHistory)
}

// noteConnection marks the change's audit event as one of connection name,
// so that berth connection history shows it.
func noteConnection(r *http.Request, name string) {
	if note, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		note.connection = name
		if note.target == "" {
			note.target = name
		}
	}
}

// connectionByName returns the connection named name: invalid for a name no
// connection may have, not_found with a hint when none has it.
func (h *handler) connectionByName(ctx context.Context, name string) (berth.Connection, error) {
	if err := berth.ValidateConnectionName(name); err != nil {
		return berth.Connection{}, err
	}
	c, err := h.cfg.Store.FindConnectionByName(ctx, name)
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.Connection{}, berth.Errorf(berth.CodeNotFound, "no service connection is named %s", name).
			WithHint("berth connection list shows the connections; berth connection create %s --principal P makes one", name).
			WithDetail("connection", name)
	}
	return c, err
}

// changeConnection is the start of every endpoint that changes connection
// {name}: it needs owner on registry, marks the audit event and returns the
// connection.
func (h *handler) changeConnection(r *http.Request, c *berth.Caller, doing string) (berth.Connection, error) {
	name := r.PathValue("name")
	noteConnection(r, name)
	if err := h.requireOwner(r.Context(), c, doing); err != nil {
		return berth.Connection{}, err
	}
	return h.connectionByName(r.Context(), name)
}

// viewer renders connections, looking each principal and pipeline up once.
type viewer struct {
	h          *handler
	now        time.Time
	principals map[string]string
	pipelines  map[string]string // id → name; nil until loaded
}

func (h *handler) viewer() *viewer {
	return &viewer{h: h, now: h.cfg.Now(), principals: map[string]string{}}
}

func (v *viewer) principal(ctx context.Context, id string) (string, error) {
	if name, ok := v.principals[id]; ok {
		return name, nil
	}
	p, err := v.h.cfg.Store.FindPrincipalByID(ctx, id)
	if berth.IsCode(err, berth.CodeNotFound) {
		v.principals[id] = ""
		return "", nil
	} else if err != nil {
		return "", err
	}
	v.principals[id] = p.Name
	return p.Name, nil
}

// pipeline returns the name of the pipeline with id, or id itself when no
// pipeline has it.
func (v *viewer) pipeline(ctx context.Context, id string) (string, error) {
	if v.pipelines == nil {
		ps, err := v.h.cfg.Store.FindPipelines(ctx, berth.PipelineFilter{})
		if err != nil {
			return "", err
		}
		v.pipelines = make(map[string]string, len(ps))
		for _, p := range ps {
			v.pipelines[p.ID] = p.Name
		}
	}
	if name, ok := v.pipelines[id]; ok {
		return name, nil
	}
	return id, nil
}

func (v *viewer) connection(ctx context.Context, c berth.Connection) (Connection, error) {
	out := Connection{ID: c.ID, Name: c.Name, PrincipalID: c.PrincipalID, Auth: c.Auth, Intents: c.Intents,
		AllPipelines: c.AllPipelines, Pipelines: []string{}, Disabled: c.Disabled, Created: c.Created}
	if out.Intents == nil {
		out.Intents = []berth.ConnectionIntent{}
	}
	var err error
	if out.Principal, err = v.principal(ctx, c.PrincipalID); err != nil {
		return Connection{}, err
	}
	for _, id := range c.Pipelines {
		name, err := v.pipeline(ctx, id)
		if err != nil {
			return Connection{}, err
		}
		out.Pipelines = append(out.Pipelines, name)
	}
	if c.SecretID != "" {
		s, err := berth.FindConnectionSecret(ctx, v.h.cfg.Store, c)
		switch {
		case err == nil:
			out.Secret = &ConnectionSecret{ID: s.ID, Hint: s.Hint, State: s.State(v.now), Expires: s.Expires}
		case !berth.IsCode(err, berth.CodeNotFound):
			return Connection{}, err
		}
	}
	return out, nil
}

// answerChange writes the connection as it now is, with what the change made.
func (h *handler) answerChange(ctx context.Context, w http.ResponseWriter, status int, c berth.Connection, ns *NewSecret, prev *PreviousSecret) error {
	view, err := h.viewer().connection(ctx, c)
	if err != nil {
		return err
	}
	return writeJSON(w, status, ConnectionChange{Connection: view, NewSecret: ns, PreviousSecret: prev})
}

// parseIntents reads the intents of a new connection, each action once.
func parseIntents(in []IntentRequest) ([]berth.ConnectionIntent, error) {
	if len(in) > maxIntents {
		return nil, berth.Errorf(berth.CodeInvalid, "the connection declares %d repositories; the limit is %d", len(in), maxIntents).
			WithHint("declare a namespace such as --repository team/* rather than each repository")
	}
	var out []berth.ConnectionIntent
	for _, r := range in {
		intent := berth.ConnectionIntent{Repository: r.Repository}
		for _, a := range r.Actions {
			if a = strings.TrimSpace(a); !slices.Contains(intent.Actions, a) {
				intent.Actions = append(intent.Actions, a)
			}
		}
		if err := intent.Validate(); err != nil {
			return nil, err
		}
		out = append(out, intent)
	}
	return out, nil
}

// parseGrace reads how long a replaced secret keeps working: "" is the
// default, "0" ends it at once.
func parseGrace(s string) (time.Duration, error) {
	switch s {
	case "":
		return berth.DefaultRenewalGrace, nil
	case "0", "0s", "0d":
		return 0, nil
	}
	d, err := berth.ParseLifetime(s, maxRenewalGrace)
	if e := berth.AsError(err); e != nil {
		e.Message = "grace period: " + e.Message
		e.Hint = "give a duration such as 7d (the default), 24h, or 0 to end the previous secret at once; at most " + berth.FormatLifetime(maxRenewalGrace)
	}
	return d, err
}

// decodeOptional decodes r's body into v when there is one.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	br := bufio.NewReader(http.MaxBytesReader(w, r.Body, maxBody))
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = io.NopCloser(br)
	return decode(w, r, v)
}

// dropSecret revokes a secret made for a change that then failed; the
// failure is what the caller reports, so this one is only logged.
func (h *handler) dropSecret(ctx context.Context, id string) {
	if err := h.cfg.Store.RevokeSecret(ctx, id, h.now()); err != nil {
		h.cfg.Logger.WarnContext(ctx, "revoke the secret of a failed connection change", slog.String("secret_id", id), slog.Any("err", err))
	}
}

// retireSecret ends the connection's current secret after grace, leaving it
// (and the refresh tokens obtained with it) working until then.
func (h *handler) retireSecret(ctx context.Context, c berth.Connection, grace time.Duration) (*PreviousSecret, error) {
	old, err := berth.FindConnectionSecret(ctx, h.cfg.Store, c)
	if berth.IsCode(err, berth.CodeNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	at := h.now().Add(grace)
	if err := h.cfg.Store.ExpireSecret(ctx, old.ID, at); err != nil && !berth.IsCode(err, berth.CodeNotFound) {
		return nil, err
	}
	return &PreviousSecret{ID: old.ID, Hint: old.Hint, Expires: minTime(old.Expires, at)}, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// createConnection makes a service connection acting as a principal. A
// secret connection gets a new client secret of the principal, whose value
// the answer shows this once.
//
// POST /api/v1/connections {"name", "principal", "auth", "intents",
// "expires_in"} → 201 with the connection (and "new_secret"). Needs owner on
// registry; not_found for an unknown principal, conflict when the name is
// taken.
func (h *handler) createConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "creating a service connection"); err != nil {
		return err
	}
	var req CreateConnectionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	noteConnection(r, req.Name)
	if req.Auth == "" {
		req.Auth = string(berth.ConnectionFederated)
	}
	auth, err := berth.ParseConnectionAuth(req.Auth)
	if err != nil {
		return err
	}
	intents, err := parseIntents(req.Intents)
	if err != nil {
		return err
	}
	if req.Principal == "" {
		return berth.Errorf(berth.CodeInvalid, "no principal was named: a connection acts as a principal, with its roles").
			WithHint("berth connection create %s --principal P", req.Name)
	}
	if req.Principal == berth.AnonymousName {
		return berth.Errorf(berth.CodeInvalid, "a connection cannot act as %s, the principal of requests without credentials", berth.AnonymousName).
			WithHint("berth principal create NAME, then berth connection create %s --principal NAME", req.Name)
	}
	p, err := h.principalByName(ctx, req.Principal)
	if err != nil {
		return err
	}
	conn, err := berth.NewConnection(h.rand, req.Name, p.ID, auth, intents, h.now())
	if err != nil {
		return err
	}
	conflict := func() error {
		return berth.Errorf(berth.CodeConflict, "a service connection named %s exists", conn.Name).
			WithHint("berth connection show %s", conn.Name)
	}
	if _, err := h.cfg.Store.FindConnectionByName(ctx, conn.Name); err == nil {
		return conflict()
	} else if !berth.IsCode(err, berth.CodeNotFound) {
		return err
	}
	var ns *NewSecret
	if auth == berth.ConnectionSecret {
		s, n, err := h.createSecret(ctx, c, p, req.ExpiresIn, "service connection "+conn.Name)
		if err != nil {
			return err
		}
		conn.SecretID, ns = s.ID, n
	} else if req.ExpiresIn != "" {
		return berth.Errorf(berth.CodeInvalid, "a federated connection holds no secret, so it takes no secret lifetime").
			WithHint("drop --expires-in, or create it with --auth secret")
	}
	if err := h.cfg.Store.CreateConnection(ctx, conn); err != nil {
		if conn.SecretID != "" {
			h.dropSecret(ctx, conn.SecretID)
		}
		if berth.IsCode(err, berth.CodeConflict) {
			return conflict()
		}
		return err
	}
	attrs := []slog.Attr{slog.String("connection", conn.Name), slog.String("as_principal", p.Name), slog.String("auth", string(auth))}
	if ns != nil {
		attrs = append(attrs, slog.String("secret_id", ns.ID), slog.String("hint", ns.Hint))
	}
	h.changed(r, c, "connection created", attrs...)
	return h.answerChange(ctx, w, http.StatusCreated, conn, ns, nil)
}

// listConnections lists the service connections by name.
//
// GET /api/v1/connections. Needs owner on registry.
func (h *handler) listConnections(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing service connections"); err != nil {
		return err
	}
	cs, err := h.cfg.Store.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return err
	}
	v := h.viewer()
	out := ConnectionList{Connections: make([]Connection, 0, len(cs))}
	for _, conn := range cs {
		view, err := v.connection(ctx, conn)
		if err != nil {
			return err
		}
		out.Connections = append(out.Connections, view)
	}
	return writeJSON(w, http.StatusOK, out)
}

// showConnection shows one connection.
//
// GET /api/v1/connections/{name}. Needs owner on registry.
func (h *handler) showConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "showing a service connection"); err != nil {
		return err
	}
	conn, err := h.connectionByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	view, err := h.viewer().connection(ctx, conn)
	if err != nil {
		return err
	}
	reqs, err := h.cfg.Store.FindPermissionRequests(ctx, conn.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ConnectionDetail{Connection: view, PendingRequests: len(reqs)})
}

// deleteConnection removes a connection, its permissions and pending
// requests, and revokes the refresh tokens issued through it; a secret
// connection's current secret is revoked with it (a previous one still in its
// grace period runs out on its own).
//
// DELETE /api/v1/connections/{name} → 200 with the connection as it was.
// Needs owner on registry.
func (h *handler) deleteConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	conn, err := h.changeConnection(r, c, "deleting a service connection")
	if err != nil {
		return err
	}
	view, err := h.viewer().connection(ctx, conn)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteConnection(ctx, conn.ID); err != nil {
		return err
	}
	now := h.now()
	out := DeletedConnection{Connection: view}
	n, err := h.cfg.Store.RevokeRefreshTokensByCredential(ctx, conn.CredentialID(), now)
	if err != nil {
		return err
	}
	out.RefreshTokensRevoked += n
	if conn.SecretID != "" {
		switch err := h.cfg.Store.RevokeSecret(ctx, conn.SecretID, now); {
		case err == nil:
			out.SecretRevoked = true
		case !berth.IsCode(err, berth.CodeNotFound):
			return err
		}
		n, err := h.cfg.Store.RevokeRefreshTokensByCredential(ctx, conn.SecretID, now)
		if err != nil {
			return err
		}
		out.RefreshTokensRevoked += n
	}
	h.changed(r, c, "connection deleted", slog.String("connection", conn.Name), slog.Bool("secret_revoked", out.SecretRevoked),
		slog.Int("refresh_tokens_revoked", out.RefreshTokensRevoked))
	return writeJSON(w, http.StatusOK, out)
}

// refuseSecretPermission is the refusal of a pipeline permission on a secret
// connection.
func refuseSecretPermission(conn berth.Connection) error {
	return berth.Errorf(berth.CodeInvalid, "service connection %s authenticates with a client secret: whoever holds the secret can use it, so a pipeline permission cannot be enforced there", conn.Name).
		WithHint("berth connection convert %s --to federated", conn.Name).WithDetail("connection", conn.Name)
}

// readPermission reads a PermissionChange naming exactly one of a pipeline
// and all pipelines.
func readPermission(w http.ResponseWriter, r *http.Request, verb string) (PermissionChange, error) {
	var req PermissionChange
	if err := decode(w, r, &req); err != nil {
		return req, err
	}
	name := r.PathValue("name")
	if (req.Pipeline == "") == !req.AllPipelines {
		what := "neither a pipeline nor all pipelines were named"
		if req.AllPipelines {
			what = "both a pipeline and all pipelines were named"
		}
		return req, berth.Errorf(berth.CodeInvalid, "%s", what).
			WithHint("berth connection %s %s --pipeline P, or --all-pipelines", verb, name)
	}
	return req, nil
}

// authorizeConnection permits a pipeline, or every pipeline, to use a
// federated connection.
//
// POST /api/v1/connections/{name}/authorize {"pipeline"} or
// {"all_pipelines": true} → 200 with the connection. Needs owner on
// registry; invalid on a secret connection.
func (h *handler) authorizeConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	conn, err := h.changeConnection(r, c, "authorizing a pipeline on a service connection")
	if err != nil {
		return err
	}
	req, err := readPermission(w, r, "authorize")
	if err != nil {
		return err
	}
	return h.permit(w, r, c, conn, req)
}

// permitConnection grants a pipeline's pending permission request: the same
// as authorizing that one pipeline.
//
// POST /api/v1/connections/{name}/permit {"pipeline"} → 200 with the
// connection. Needs owner on registry; invalid on a secret connection.
func (h *handler) permitConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	conn, err := h.changeConnection(r, c, "permitting a pipeline on a service connection")
	if err != nil {
		return err
	}
	var req PermissionChange
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Pipeline == "" || req.AllPipelines {
		return berth.Errorf(berth.CodeInvalid, "permit grants one pipeline's request, and names it").
			WithHint("berth connection permit %s --pipeline P (berth connection requests %s lists them)", conn.Name, conn.Name)
	}
	return h.permit(w, r, c, conn, req)
}

// dismissRequest removes a pipeline's pending permission request without
// permitting it: the pipeline stays refused, and its next attempt is a new
// request.
//
// POST /api/v1/connections/{name}/dismiss {"pipeline"} → 200 with the
// connection. Needs owner on registry; not_found when no request of the
// pipeline is pending.
func (h *handler) dismissRequest(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	conn, err := h.changeConnection(r, c, "dismissing a pipeline's permission request")
	if err != nil {
		return err
	}
	var req PermissionChange
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Pipeline == "" || req.AllPipelines {
		return berth.Errorf(berth.CodeInvalid, "dismiss removes one pipeline's request, and names it").
			WithHint("berth connection requests %s lists them", conn.Name)
	}
	p, err := h.pipelineByName(ctx, req.Pipeline)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DismissPermissionRequest(ctx, conn.ID, p.ID); berth.IsCode(err, berth.CodeNotFound) {
		return berth.Errorf(berth.CodeNotFound, "pipeline %s has no pending request on service connection %s", p.Name, conn.Name).
			WithHint("berth connection requests %s lists the pending requests", conn.Name)
	} else if err != nil {
		return err
	}
	h.changed(r, c, "permission request dismissed", slog.String("connection", conn.Name), slog.String("pipeline", p.Name))
	return h.answerChange(ctx, w, http.StatusOK, conn, nil, nil)
}

func (h *handler) permit(w http.ResponseWriter, r *http.Request, c *berth.Caller, conn berth.Connection, req PermissionChange) error {
	ctx := r.Context()
	if conn.Auth == berth.ConnectionSecret {
		return refuseSecretPermission(conn)
	}
	if req.AllPipelines {
		all := true
		updated, err := h.cfg.Store.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{AllPipelines: &all})
		if err != nil {
			return err
		}
		h.changed(r, c, "connection authorized", slog.String("connection", conn.Name), slog.Bool("all_pipelines", true))
		return h.answerChange(ctx, w, http.StatusOK, updated, nil, nil)
	}
	p, err := h.pipelineByName(ctx, req.Pipeline)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.PermitPipeline(ctx, conn.ID, p.ID); err != nil {
		return err
	}
	updated, err := h.cfg.Store.FindConnectionByID(ctx, conn.ID)
	if err != nil {
		return err
	}
	h.changed(r, c, "connection authorized", slog.String("connection", conn.Name), slog.String("pipeline", p.Name))
	return h.answerChange(ctx, w, http.StatusOK, updated, nil, nil)
}

// unauthorizeConnection withdraws a pipeline's permission, or the permission
// of all pipelines. Tokens already issued run out on their own.
//
// POST /api/v1/connections/{name}/unauthorize {"pipeline"} or
// {"all_pipelines": true} → 200 with the connection. Needs owner on
// registry; not_found when the pipeline is not permitted, conflict when
// every pipeline is (one cannot be excepted).
func (h *handler) unauthorizeConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	conn, err := h.changeConnection(r, c, "unauthorizing a pipeline on a service connection")
	if err != nil {
		return err
	}
	req, err := readPermission(w, r, "unauthorize")
	if err != nil {
		return err
	}
	if req.AllPipelines {
		if !conn.AllPipelines {
			return berth.Errorf(berth.CodeInvalid, "service connection %s does not permit all pipelines; it permits %d by name", conn.Name, len(conn.Pipelines)).
				WithHint("berth connection show %s lists them; berth connection unauthorize %s --pipeline P withdraws one", conn.Name, conn.Name)
		}
		all := false
		updated, err := h.cfg.Store.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{AllPipelines: &all})
		if err != nil {
			return err
		}
		h.changed(r, c, "connection unauthorized", slog.String("connection", conn.Name), slog.Bool("all_pipelines", true))
		return h.answerChange(ctx, w, http.StatusOK, updated, nil, nil)
	}
	p, err := h.pipelineByName(ctx, req.Pipeline)
	if err != nil {
		return err
	}
	if !slices.Contains(conn.Pipelines, p.ID) {
		if conn.AllPipelines {
			return berth.Errorf(berth.CodeConflict, "service connection %s permits all pipelines, and one cannot be excepted", conn.Name).
				WithHint("berth connection unauthorize %s --all-pipelines, then berth connection authorize %s --pipeline P for each pipeline to keep", conn.Name, conn.Name)
		}
		return berth.Errorf(berth.CodeNotFound, "pipeline %s is not permitted on service connection %s", p.Name, conn.Name).
			WithHint("berth connection show %s lists the pipelines it permits", conn.Name)
	}
	if err := h.cfg.Store.ForbidPipeline(ctx, conn.ID, p.ID); err != nil {
		return err
	}
	updated, err := h.cfg.Store.FindConnectionByID(ctx, conn.ID)
	if err != nil {
		return err
	}
	h.changed(r, c, "connection unauthorized", slog.String("connection", conn.Name), slog.String("pipeline", p.Name))
	return h.answerChange(ctx, w, http.StatusOK, updated, nil, nil)
}

// connectionRequests lists the pipelines that tried to use a connection
// without being permitted, oldest first.
//
// GET /api/v1/connections/{name}/requests. Needs owner on registry.
func (h *handler) connectionRequests(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "listing permission requests"); err != nil {
		return err
	}
	conn, err := h.connectionByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	reqs, err := h.cfg.Store.FindPermissionRequests(ctx, conn.ID)
	if err != nil {
		return err
	}
	v := h.viewer()
	out := PermissionRequestList{Connection: conn.Name, Requests: make([]PermissionRequest, 0, len(reqs))}
	for _, q := range reqs {
		name, err := v.pipeline(ctx, q.PipelineID)
		if err != nil {
			return err
		}
		out.Requests = append(out.Requests, PermissionRequest{Pipeline: name, PipelineID: q.PipelineID, First: q.First, Last: q.Last,
			Count: q.Count, Run: q.Run})
	}
	return writeJSON(w, http.StatusOK, out)
}

// disableConnection stops a connection: exchanges through it are refused and
// the tokens it issued stop at their next check. Enabling it revives them.
//
// POST /api/v1/connections/{name}/disable. Needs owner on registry.
func (h *handler) disableConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	return h.setConnectionDisabled(w, r, c, true)
}

// enableConnection undoes disableConnection.
//
// POST /api/v1/connections/{name}/enable. Needs owner on registry.
func (h *handler) enableConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	return h.setConnectionDisabled(w, r, c, false)
}

func (h *handler) setConnectionDisabled(w http.ResponseWriter, r *http.Request, c *berth.Caller, disabled bool) error {
	ctx := r.Context()
	doing, msg := "enabling a service connection", "connection enabled"
	if disabled {
		doing, msg = "disabling a service connection", "connection disabled"
	}
	conn, err := h.changeConnection(r, c, doing)
	if err != nil {
		return err
	}
	if conn.Disabled != disabled {
		if conn, err = h.cfg.Store.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{Disabled: &disabled}); err != nil {
			return err
		}
		h.changed(r, c, msg, slog.String("connection", conn.Name))
	}
	return h.answerChange(ctx, w, http.StatusOK, conn, nil, nil)
}

// saveConnection renews a secret connection's secret: a new one, shown this
// once, becomes current, and the previous one (with the refresh tokens
// obtained with it) keeps working for the grace period, so pipelines switch
// without downtime.
//
// POST /api/v1/connections/{name}/save [{"grace", "expires_in"}] → 200 with
// the connection, "new_secret" and "previous_secret". Needs owner on
// registry; invalid on a federated connection, which holds no secret.
func (h *handler) saveConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	conn, err := h.changeConnection(r, c, "renewing a service connection")
	if err != nil {
		return err
	}
	var req RenewRequest
	if err := decodeOptional(w, r, &req); err != nil {
		return err
	}
	if conn.Auth != berth.ConnectionSecret {
		return berth.Errorf(berth.CodeInvalid, "service connection %s is federated: it holds no secret, so there is nothing to renew", conn.Name).
			WithHint("berth connection verify %s checks it; berth connection convert %s --to secret gives it a secret", conn.Name, conn.Name).
			WithDetail("connection", conn.Name)
	}
	grace, err := parseGrace(req.Grace)
	if err != nil {
		return err
	}
	p, err := h.cfg.Store.FindPrincipalByID(ctx, conn.PrincipalID)
	if err != nil {
		return err
	}
	s, ns, err := h.createSecret(ctx, c, p, req.ExpiresIn, "service connection "+conn.Name)
	if err != nil {
		return err
	}
	prev, err := h.retireSecret(ctx, conn, grace)
	if err != nil {
		h.dropSecret(ctx, s.ID)
		return err
	}
	updated, err := h.cfg.Store.UpdateConnection(ctx, conn.ID, berth.ConnectionUpdate{SecretID: &s.ID})
	if err != nil {
		h.dropSecret(ctx, s.ID)
		return err
	}
	attrs := []slog.Attr{slog.String("connection", conn.Name), slog.String("secret_id", s.ID), slog.String("hint", s.Hint)}
	if prev != nil {
		attrs = append(attrs, slog.String("previous_secret_id", prev.ID), slog.Time("previous_expires_at", prev.Expires))
	}
	h.changed(r, c, "connection renewed", attrs...)
	return h.answerChange(ctx, w, http.StatusOK, updated, ns, prev)
}

// convertConnection changes how a connection authenticates. To federated: the
// secret keeps working for the grace period and the connection then holds
// none. To secret: a new secret of the principal, shown this once; the
// pipeline permissions stay, unenforced, for a conversion back.
//
// POST /api/v1/connections/{name}/convert {"to", "grace", "expires_in"} → 200
// with the connection and "new_secret" or "previous_secret". Needs owner on
// registry; invalid when it already authenticates that way.
func (h *handler) convertConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	conn, err := h.changeConnection(r, c, "converting a service connection")
	if err != nil {
		return err
	}
	var req ConvertRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	to, err := berth.ParseConnectionAuth(req.To)
	if err != nil {
		if e := berth.AsError(err); e != nil {
			e.WithHint("berth connection convert %s --to federated", conn.Name)
		}
		return err
	}
	if to == conn.Auth {
		return berth.Errorf(berth.CodeInvalid, "service connection %s already authenticates as %s", conn.Name, to).
			WithHint("berth connection show %s", conn.Name)
	}
	var ns *NewSecret
	var prev *PreviousSecret
	update := berth.ConnectionUpdate{Auth: &to}
	switch to {
	case berth.ConnectionFederated:
		if req.ExpiresIn != "" {
			return berth.Errorf(berth.CodeInvalid, "a federated connection holds no secret, so it takes no secret lifetime").
				WithHint("berth connection convert %s --to federated [--grace 7d]", conn.Name)
		}
		grace, err := parseGrace(req.Grace)
		if err != nil {
			return err
		}
		if prev, err = h.retireSecret(ctx, conn, grace); err != nil {
			return err
		}
		none := ""
		update.SecretID = &none
	case berth.ConnectionSecret:
		if req.Grace != "" {
			return berth.Errorf(berth.CodeInvalid, "a federated connection has no previous secret, so a grace period means nothing").
				WithHint("berth connection convert %s --to secret", conn.Name)
		}
		p, err := h.cfg.Store.FindPrincipalByID(ctx, conn.PrincipalID)
		if err != nil {
			return err
		}
		var s berth.Secret
		if s, ns, err = h.createSecret(ctx, c, p, req.ExpiresIn, "service connection "+conn.Name); err != nil {
			return err
		}
		update.SecretID = &s.ID
	}
	updated, err := h.cfg.Store.UpdateConnection(ctx, conn.ID, update)
	if err != nil {
		if ns != nil {
			h.dropSecret(ctx, ns.ID)
		}
		return err
	}
	attrs := []slog.Attr{slog.String("connection", conn.Name), slog.String("from", string(conn.Auth)), slog.String("to", string(to))}
	if prev != nil {
		attrs = append(attrs, slog.String("previous_secret_id", prev.ID), slog.Time("previous_expires_at", prev.Expires))
	}
	if ns != nil {
		attrs = append(attrs, slog.String("secret_id", ns.ID), slog.String("hint", ns.Hint))
	}
	h.changed(r, c, "connection converted", attrs...)
	return h.answerChange(ctx, w, http.StatusOK, updated, ns, prev)
}

// verifyConnection answers the connection's checklist (berth.VerifyConnection).
// A failed check is a successful answer with "ok": false.
//
// GET /api/v1/connections/{name}/verify. Needs owner on registry.
func (h *handler) verifyConnection(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "verifying a service connection"); err != nil {
		return err
	}
	conn, err := h.connectionByName(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	report, err := berth.VerifyConnection(ctx, h.cfg.Store, h.cfg.Issuers, conn, h.cfg.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, report)
}

// connectionHistory shows the latest uses of and changes to a connection,
// from the audit log: time, pipeline, CI run, action, target, result and
// reason.
//
// GET /api/v1/connections/{name}/history[?since=24h][&limit=N]: the last
// limit (default 100) events since then, oldest first. Needs owner on
// registry. A deleted connection's history is still shown; not_found only
// when no connection has the name and no event names it.
func (h *handler) connectionHistory(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "reading a connection's history"); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := berth.ValidateConnectionName(name); err != nil {
		return err
	}
	q := r.URL.Query()
	f := berth.AuditFilter{Connection: name, Last: true}
	var err error
	if f.Since, err = berth.ParseAuditTime("since", q.Get("since"), h.now()); err != nil {
		return err
	}
	if f.Limit, err = parseLimit(q, defaultHistory, maxPageSize); err != nil {
		return err
	}
	events, err := h.cfg.Store.FindAuditEvents(ctx, f)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		if _, err := h.connectionByName(ctx, name); err != nil {
			return err
		}
	}
	out := ConnectionHistory{Connection: name, Events: make([]HistoryEvent, 0, len(events))}
	for _, e := range events {
		out.Events = append(out.Events, HistoryEvent{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Pipeline: e.Pipeline,
			CIRun: e.Detail["ci_run"], CIRunURL: e.Detail["ci_run_url"], Action: e.Action, Target: e.Target, Result: e.Result, Reason: e.Reason, Message: e.Detail["message"]})
	}
	return writeJSON(w, http.StatusOK, out)
}
