package berth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// CheckStatus is the outcome of one check of a connection.
type CheckStatus string

// The outcomes of a check.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// Check is one line of a connection's checklist: the facts in Message, the
// reason code a use of the connection would be refused with in Code (for a
// warning or a failure), the command that fixes it in Hint.
type Check struct {
	Name    string      `json:"name"`
	Status  CheckStatus `json:"status"`
	Code    Code        `json:"code,omitempty"`
	Message string      `json:"message"`
	Hint    string      `json:"hint,omitempty"`
}

// ConnectionReport is the checklist of one connection. OK is false when any
// check failed; a warning leaves it true.
type ConnectionReport struct {
	Connection string  `json:"connection"`
	OK         bool    `json:"ok"`
	Checks     []Check `json:"checks"`
}

// Err returns nil when the report is OK, and otherwise the first failed
// check as an *Error with its code, facts and hint.
func (r ConnectionReport) Err() error {
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			code := c.Code
			if code == "" {
				code = CodeInvalid
			}
			return Errorf(code, "service connection %s fails its check %q: %s", r.Connection, c.Name, c.Message).
				WithHint("%s", c.Hint).WithDetail("connection", r.Connection).WithDetail("check", c.Name)
		}
	}
	return nil
}

// Bounds of a connection's verification.
const (
	// SecretExpiryWarning is how long before its secret expires a connection
	// is reported with a warning.
	SecretExpiryWarning = 30 * 24 * time.Hour
	issuerCheckTimeout  = 10 * time.Second
	issuerChecksAtOnce  = 8
)

// ConnectionVerifyStore is what VerifyConnection reads.
type ConnectionVerifyStore interface {
	PrincipalStore
	SecretStore
	RoleStore
	PipelineStore
	ConnectionStore
}

// VerifyConnection checks, at now, everything a use of conn depends on: the
// connection and its principal are enabled; a secret connection's secret is
// valid (a warning under SecretExpiryWarning); a federated connection permits
// a pipeline, and each permitted pipeline's issuer answers with keys (through
// issuers; skipped with a warning when nil); the principal's roles cover each
// declared intent, naming the missing role and the command that assigns it.
// It returns an error only when the store fails: a failed check is a report
// that is not OK.
func VerifyConnection(ctx context.Context, store ConnectionVerifyStore, issuers IssuerChecker, conn Connection, now time.Time) (ConnectionReport, error) {
	v := &verification{store: store, issuers: issuers, conn: conn, now: now}
	if err := v.run(ctx); err != nil {
		return ConnectionReport{}, err
	}
	r := ConnectionReport{Connection: conn.Name, OK: true, Checks: v.checks}
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			r.OK = false
		}
	}
	return r, nil
}

// FindConnectionSecret returns the current secret of a secret connection, or
// not_found when it holds none or the secret no longer exists.
func FindConnectionSecret(ctx context.Context, store SecretStore, c Connection) (Secret, error) {
	if c.SecretID == "" {
		return Secret{}, Errorf(CodeNotFound, "service connection %s holds no secret", c.Name)
	}
	ss, err := store.FindSecrets(ctx, c.PrincipalID)
	if err != nil {
		return Secret{}, err
	}
	for _, s := range ss {
		if s.ID == c.SecretID {
			return s, nil
		}
	}
	return Secret{}, Errorf(CodeNotFound, "the secret %s of service connection %s no longer exists", c.SecretID, c.Name).
		WithHint("berth connection save %s makes a new one", c.Name)
}

// verification collects the checks of one connection.
type verification struct {
	store   ConnectionVerifyStore
	issuers IssuerChecker
	conn    Connection
	now     time.Time
	checks  []Check
}

func (v *verification) add(name string, status CheckStatus, code Code, hint, format string, args ...any) {
	v.checks = append(v.checks, Check{Name: name, Status: status, Code: code, Message: fmt.Sprintf(format, args...), Hint: hint})
}

// run adds every check; it returns only the errors of the store.
func (v *verification) run(ctx context.Context) error {
	name := v.conn.Name
	if v.conn.Disabled {
		v.add("connection", CheckFail, CodeConnectionDisabled, "berth connection enable "+name, "service connection %s is disabled: every exchange through it is refused", name)
	} else {
		v.add("connection", CheckOK, "", "", "service connection %s is enabled (%s)", name, v.conn.Auth)
	}
	p, err := v.store.FindPrincipalByID(ctx, v.conn.PrincipalID)
	switch {
	case IsCode(err, CodeNotFound):
		v.add("principal", CheckFail, CodeClientUnknown, fmt.Sprintf("berth connection delete %s, then create it again with --principal P", name),
			"the principal the connection acts as (id %s) no longer exists", v.conn.PrincipalID)
		return nil // nothing else can be checked without it
	case err != nil:
		return err
	case p.Disabled:
		v.add("principal", CheckFail, CodePrincipalDisabled, "berth principal enable "+p.Name, "principal %s is disabled: it cannot authenticate, through this connection or otherwise", p.Name)
	default:
		v.add("principal", CheckOK, "", "", "principal %s exists and is enabled", p.Name)
	}
	switch v.conn.Auth {
	case ConnectionSecret:
		if err := v.checkSecret(ctx); err != nil {
			return err
		}
	default:
		if err := v.checkPipelines(ctx); err != nil {
			return err
		}
	}
	return v.checkAccess(ctx, p)
}

func (v *verification) checkSecret(ctx context.Context) error {
	name := v.conn.Name
	fix := "berth connection save " + name
	s, err := FindConnectionSecret(ctx, v.store, v.conn)
	if IsCode(err, CodeNotFound) {
		v.add("secret", CheckFail, CodeSecretInvalid, fix, "service connection %s has no current secret", name)
		return nil
	} else if err != nil {
		return err
	}
	days := int(s.Expires.Sub(v.now) / (24 * time.Hour))
	switch s.State(v.now) {
	case SecretRevoked:
		v.add("secret", CheckFail, CodeSecretRevoked, fix, "secret %s… (id %s) was revoked on %s", s.Hint, s.ID, formatTime(*s.Revoked))
	case SecretExpired:
		v.add("secret", CheckFail, CodeSecretExpired, fix, "secret %s… (id %s) expired on %s, %s ago", s.Hint, s.ID, formatTime(s.Expires), ago(v.now.Sub(s.Expires)))
	default:
		if s.Expires.Sub(v.now) < SecretExpiryWarning {
			v.add("secret", CheckWarn, CodeSecretExpired, fix, "secret %s… (id %s) expires on %s, in %s", s.Hint, s.ID, formatTime(s.Expires), plural(int64(days), "day"))
		} else {
			v.add("secret", CheckOK, "", "", "secret %s… (id %s) is valid until %s, %d days from now", s.Hint, s.ID, formatTime(s.Expires), days)
		}
	}
	return nil
}

func (v *verification) checkPipelines(ctx context.Context) error {
	name := v.conn.Name
	var ps []Pipeline
	if v.conn.AllPipelines {
		all, err := v.store.FindPipelines(ctx, PipelineFilter{})
		if err != nil {
			return err
		}
		ps = all
	} else {
		for _, id := range v.conn.Pipelines {
			p, err := v.store.FindPipelineByID(ctx, id)
			if IsCode(err, CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		reqs, err := v.store.FindPermissionRequests(ctx, v.conn.ID)
		if err != nil {
			return err
		}
		what := "no pipeline is permitted to use it"
		if v.conn.AllPipelines {
			what = "it permits all pipelines, and none is registered"
		}
		hint := fmt.Sprintf("berth connection authorize %s --pipeline PIPELINE (berth pipeline list shows the pipelines)", name)
		if len(reqs) > 0 {
			what += fmt.Sprintf("; %s asked (berth connection requests %s)", plural(int64(len(reqs)), "pipeline"), name)
			asked := "PIPELINE"
			if p, err := v.store.FindPipelineByID(ctx, reqs[0].PipelineID); err == nil && len(reqs) == 1 {
				asked = p.Name
			}
			hint = fmt.Sprintf("berth connection permit %s --pipeline %s", name, asked)
		}
		v.add("pipelines", CheckWarn, CodePipelineNotAuthorized, hint, "%s", what)
		return nil
	}
	if v.issuers == nil {
		v.add("issuers", CheckWarn, "", "", "this server cannot check issuers: no issuer checker is configured")
		return nil
	}
	results := make([]Check, len(ps))
	sem := make(chan struct{}, issuerChecksAtOnce)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, issuerCheckTimeout)
			defer cancel()
			results[i] = issuerCheck(cctx, v.issuers, p)
		})
	}
	wg.Wait()
	v.checks = append(v.checks, results...)
	return nil
}

// issuerCheck loads p's issuer keys as an exchange would.
func issuerCheck(ctx context.Context, ic IssuerChecker, p Pipeline) Check {
	ch := Check{Name: "issuer " + p.Name}
	keys, err := ic.CheckIssuer(ctx, p)
	switch {
	case err != nil:
		ch.Status, ch.Code = CheckFail, ErrorCode(err)
		ch.Message = fmt.Sprintf("pipeline %s: the keys of issuer %s cannot be loaded: %s", p.Name, p.Issuer, errorText(err))
		if be := AsError(err); be != nil && be.Hint != "" {
			ch.Hint = be.Hint
		} else {
			ch.Hint = fmt.Sprintf("check that berth reaches %s/.well-known/openid-configuration, or register the pipeline with --jwks-file", strings.TrimRight(p.Issuer, "/"))
		}
	case keys == 0:
		ch.Status, ch.Code = CheckFail, CodeAssertionInvalid
		ch.Message = fmt.Sprintf("pipeline %s: issuer %s publishes no keys", p.Name, p.Issuer)
	default:
		source := "from its discovery document"
		if p.JWKS != nil {
			source = "from the key set registered with the pipeline"
		}
		ch.Status, ch.Message = CheckOK, fmt.Sprintf("pipeline %s: issuer %s: %s loaded %s", p.Name, p.Issuer, plural(int64(keys), "key"), source)
	}
	return ch
}

// errorText is err's message: a *Error's facts and code, or the text
// of any other (which, from an issuer checker, names a URL, never a secret).
func errorText(err error) string {
	if be := AsError(err); be != nil {
		return be.Message + " [" + string(be.Code) + "]"
	}
	return err.Error()
}

// checkAccess checks that p's roles cover each declared intent, naming the
// missing role and the command that grants it.
func (v *verification) checkAccess(ctx context.Context, p Principal) error {
	if len(v.conn.Intents) == 0 {
		v.add("access", CheckOK, "", "", "the connection declares no repository, so there is no access to check (berth connection create … --repository R --actions pull,push declares one)")
		return nil
	}
	as, err := v.store.FindRoleAssignments(ctx, RoleAssignmentFilter{PrincipalID: p.ID})
	if err != nil {
		return err
	}
	idx := NewAccessIndex(Actor{ID: p.ID, Name: p.Name}, as)
	for _, in := range v.conn.Intents {
		var missing []Role
		var denied, hints []string
		var first string
		for _, docker := range writesFirst(in.Actions) {
			for _, a := range DockerActionNeeds(docker) {
				d := idx.Decide(a, in.Repository)
				if d.Allowed {
					continue
				}
				if !slices.Contains(denied, docker) {
					denied = append(denied, docker)
				}
				if first == "" {
					first = d.Message
				}
				if d.Missing == "" || slices.ContainsFunc(missing, func(r Role) bool { return r.Allows(a) }) {
					continue
				}
				missing = append(missing, d.Missing)
				hints = append(hints, d.Hint)
			}
		}
		name := "access " + in.Repository
		if len(denied) == 0 {
			v.add(name, CheckOK, "", "", "principal %s may %s on %s", p.Name, strings.Join(in.Actions, ", "), in.Repository)
			continue
		}
		roles := make([]string, len(missing))
		for i, r := range missing {
			roles[i] = string(r)
		}
		v.add(name, CheckFail, CodeRoleMissing, strings.Join(hints, "; "), "principal %s may not %s on %s: it lacks the role %s there (%s)",
			p.Name, strings.Join(denied, ", "), in.Repository, strings.Join(roles, " and "), first)
	}
	return nil
}

// writesFirst orders Docker actions so that a denial names the widest
// missing role first: delete and push before pull.
func writesFirst(as []string) []string {
	rank := map[string]int{DockerActionDelete: 0, DockerActionPush: 1}
	out := slices.Clone(as)
	slices.SortStableFunc(out, func(x, y string) int {
		rx, ok := rank[x]
		if !ok {
			rx = 2
		}
		ry, ok := rank[y]
		if !ok {
			ry = 2
		}
		return rx - ry
	})
	return out
}
