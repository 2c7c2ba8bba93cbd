package berth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditAction names what an audit event records. The text is stable: audit
// queries and retention tooling select on it.
type AuditAction string

// Authentication. A request that authenticates and is then decided is recorded
// once, by its decision (a registry.* or management action, whose actor and
// credential say who authenticated and with what); these actions record the
// authentications that are not followed by a decision: every failure, and
// every token the token endpoint issues.
const (
	// AuditAuthBasic is Basic client credentials refused on a request (/v2/,
	// /api/v1). Actor is AuditClientID of the user name sent.
	AuditAuthBasic AuditAction = "auth.basic"
	// AuditAuthBearer is an access token refused on a request: expired,
	// malformed, or its principal or credential no longer live.
	AuditAuthBearer AuditAction = "auth.bearer"
	// AuditAuthToken is the token endpoint issuing (allowed) or refusing
	// (denied) an access token, for any grant. Target is the first repository
	// the requested scope names, or the scope itself; Detail holds
	// "grant_type", "scope" (requested) and "granted".
	AuditAuthToken AuditAction = "auth.token"
	// AuditAuthRevoke is a refresh token revoked by its holder (RFC 7009:
	// berth logout, docker logout through the credential helper). Actor is
	// the token's principal; Detail "refresh_token_id".
	AuditAuthRevoke AuditAction = "auth.revoke"
	// AuditAuthSignIn is a person's sign-in through an identity provider (its
	// target the provider), made or refused; AuditAuthSignOut its end, and
	// AuditAuthDevice the approval or denial of a device login.
	AuditAuthSignIn  AuditAction = "auth.signin"
	AuditAuthSignOut AuditAction = "auth.signout"
	AuditAuthDevice  AuditAction = "auth.device"
)

// Registry decisions: one per /v2/ request, allowed or denied. Target is the
// repository ("" for the version check and the catalog).
const (
	AuditRegistryVersion AuditAction = "registry.version" // GET /v2/: needs an authenticated caller
	AuditRegistryPull    AuditAction = "registry.pull"
	AuditRegistryPush    AuditAction = "registry.push"
	AuditRegistryDelete  AuditAction = "registry.delete"
	AuditRegistryCatalog AuditAction = "registry.catalog"
)

// Changes made through the management API or the command line: allowed when
// done, denied with the reason when refused. Target is the principal, the
// pipeline or the connection changed; Detail holds the rest ("role" and
// "scope" of an assignment, "secret_id" of a secret).
const (
	AuditPrincipalCreate       AuditAction = "principal.create"
	AuditPrincipalDisable      AuditAction = "principal.disable"
	AuditPrincipalEnable       AuditAction = "principal.enable"
	AuditPrincipalDelete       AuditAction = "principal.delete"
	AuditSecretAdd             AuditAction = "secret.add"
	AuditSecretRemove          AuditAction = "secret.remove"
	AuditRoleAssign            AuditAction = "role.assign"
	AuditRoleRevoke            AuditAction = "role.revoke"
	AuditPipelineCreate        AuditAction = "pipeline.create"
	AuditPipelineDelete        AuditAction = "pipeline.delete"
	AuditPipelineKeys          AuditAction = "pipeline.keys"
	AuditConnectionCreate      AuditAction = "connection.create"
	AuditConnectionAuthorize   AuditAction = "connection.authorize"
	AuditConnectionUnauthorize AuditAction = "connection.unauthorize"
	// AuditConnectionDismiss records a pipeline's pending permission request
	// dismissed without permitting it.
	AuditConnectionDismiss AuditAction = "connection.dismiss"
	AuditConnectionSave    AuditAction = "connection.save"
	AuditConnectionConvert AuditAction = "connection.convert"
	AuditConnectionDisable AuditAction = "connection.disable"
	AuditConnectionEnable  AuditAction = "connection.enable"
	AuditConnectionDelete  AuditAction = "connection.delete"
	// AuditPermissionRequested records a registered pipeline refused by a
	// connection that does not permit it (Target: the connection, Pipeline:
	// the pipeline): a pending request berth connection requests lists.
	AuditPermissionRequested AuditAction = "pipeline.permission_requested"
	AuditKeysRotate          AuditAction = "keys.rotate"
	// Identity providers added and removed.
	AuditIdPAdd    AuditAction = "idp.add"
	AuditIdPRemove AuditAction = "idp.remove"
	// Personal access tokens created and revoked.
	AuditTokenCreate AuditAction = "token.create"
	AuditTokenRevoke AuditAction = "token.revoke"
	// AuditGCRun is a garbage collection asked for through the management
	// API (Detail "dry_run", and what it removed).
	AuditGCRun AuditAction = "gc.run"
	// AuditAdminRecover is berth admin recover giving an owner a new secret
	// from the stores themselves (Actor "break-glass", Target the principal).
	AuditAdminRecover AuditAction = "admin.recover"
)

// The audit log's own records. Their Result is empty: they decide nothing.
const (
	// AuditLogDropped records that events were lost (the writer's buffer was
	// full, or the store failed): Detail "count" says how many, "since" since
	// when. The log never loses events silently.
	AuditLogDropped AuditAction = "audit.dropped"
	// AuditLogPruned records that retention deleted the events before
	// Detail "before"; "count" says how many.
	AuditLogPruned AuditAction = "audit.pruned"
)

// AuditRegistryAction returns the audit action of a /v2/ request that needs
// the Docker action dockerAction ("pull", "push", "delete", "*" for the
// catalog; "" for the version check).
func AuditRegistryAction(dockerAction string) AuditAction {
	switch dockerAction {
	case "":
		return AuditRegistryVersion
	case DockerActionPull:
		return AuditRegistryPull
	case DockerActionPush:
		return AuditRegistryPush
	case DockerActionDelete:
		return AuditRegistryDelete
	case DockerActionAll:
		return AuditRegistryCatalog
	}
	return AuditAction("registry." + Truncate(dockerAction, 20))
}

// AuditResult is the outcome an audit event records.
type AuditResult string

const (
	AuditAllowed AuditResult = "allowed"
	AuditDenied  AuditResult = "denied"
	// AuditChallenged is a request without credentials answered with the
	// challenge to log in (every client's first GET /v2/): not a refusal,
	// so that --result denied shows only real ones.
	AuditChallenged AuditResult = "challenged"
)

// ParseAuditResult returns the result s names, or invalid.
func ParseAuditResult(s string) (AuditResult, error) {
	switch r := AuditResult(s); r {
	case AuditAllowed, AuditDenied, AuditChallenged:
		return r, nil
	}
	return "", Errorf(CodeInvalid, "%q is not an audit result", Truncate(s, 40)).
		WithHint("use allowed, denied or challenged")
}

// AuditEvent is one entry of the audit log: an authentication, an
// authorization decision or a change. It never holds a credential: ChainEvent
// redacts any field that looks like one (a client secret, a refresh token, a
// JWT) before the event is hashed and stored.
//
// Seq, PrevHash and Hash are assigned when the event is appended (see
// ChainEvent); a recorder leaves them zero.
type AuditEvent struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is the name of the principal that acted ("anonymous" for a request
	// without credentials; the client id as sent, through AuditClientID, for a
	// failed authentication), ActorID its ID when known.
	Actor   string `json:"actor"`
	ActorID string `json:"actor_id"`
	// Source is the address the request came from.
	Source string      `json:"source"`
	Action AuditAction `json:"action"`
	// Target is what the action was on: a repository, a principal, a scope.
	Target string      `json:"target"`
	Result AuditResult `json:"result"`
	// Reason is the code of a denial; "" when allowed.
	Reason    Code   `json:"reason"`
	RequestID string `json:"request_id"`
	// CredentialID is the id of the client secret (or service connection) the
	// actor proved, never its value.
	CredentialID string `json:"credential_id"`
	// Connection and Pipeline name the service connection and the CI pipeline
	// of a federated request.
	Connection string `json:"connection"`
	Pipeline   string `json:"pipeline"`
	// Detail holds the facts particular to the action; never a credential.
	Detail map[string]string `json:"detail,omitempty"`
	// PrevHash is the Hash of the event before this one (or of the anchor
	// after retention); "" for the first event ever written.
	PrevHash string `json:"prev_hash"`
	// Hash is the hex SHA-256 that chains this event to PrevHash; see
	// ChainEvent.
	Hash string `json:"hash"`
}

// AuditLink is a point of the hash chain: an event's Seq and Hash. The zero
// AuditLink is the start of a log that has never been pruned.
type AuditLink struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Link returns e's point of the chain.
func (e AuditEvent) Link() AuditLink { return AuditLink{Seq: e.Seq, Hash: e.Hash} }

// NewAuditEvent returns the event of a decision taken in ctx, a request's
// context: Actor, ActorID and CredentialID from its Caller (when it has one),
// RequestID and Source from ctx, and the result from err: allowed when err is
// nil, otherwise denied with err's code as the reason and, for an *Error, its
// message and the string form of its detail in Detail. A recorder sets what
// ctx cannot know (Connection, Pipeline, more Detail) before recording it.
//
// It is the one call an emission point makes:
//
//	rec.Record(berth.NewAuditEvent(ctx, berth.AuditRegistryPull, repo, err))
func NewAuditEvent(ctx context.Context, action AuditAction, target string, err error) AuditEvent {
	e := AuditEvent{
		Action:    action,
		Target:    target,
		Result:    AuditAllowed,
		RequestID: RequestID(ctx),
		Source:    SourceAddress(ctx),
	}
	if c := CallerFrom(ctx); c != nil {
		e.Actor, e.ActorID, e.CredentialID = c.Actor.Name, c.Actor.ID, c.CredentialID
		e.Connection, e.Pipeline = c.Connection, c.Pipeline
		if c.Run != "" {
			e.Detail = map[string]string{"ci_run": c.Run}
			if c.RunURL != "" {
				e.Detail["ci_run_url"] = c.RunURL
			}
		}
	}
	if err != nil {
		e.Result, e.Reason = AuditDenied, ErrorCode(err)
		if be := AsError(err); be != nil {
			if e.Detail == nil {
				e.Detail = make(map[string]string, len(be.Detail)+len(be.Private)+1)
			}
			for k, v := range be.Detail {
				e.Detail[k] = fmt.Sprint(v)
			}
			for k, v := range be.Private {
				e.Detail[k] = v
			}
			e.Detail["message"] = be.Message
		}
	}
	return e
}

// AuditRecorder takes audit events. internal/audit.Writer implements it; the
// handlers that emit events depend on this interface only.
type AuditRecorder interface {
	// Record takes e for writing, without waiting for the store. It never
	// fails: an event it cannot keep is counted and reported in the log as
	// audit.dropped.
	Record(e AuditEvent)
}

// AuditClientID returns what an audit event may record of a client id as a
// client sent it (the user name of Basic credentials, an OAuth 2.0
// client_id): the canonical client id when it is a UUID, the name when it is a
// valid principal name, and otherwise "" — a malformed client id may be a
// secret pasted into the wrong field.
func AuditClientID(user string) string {
	if id, err := parseUUID(user); err == nil {
		return id
	}
	if ValidatePrincipalName(user) == nil {
		return user
	}
	return ""
}

type sourceAddressKey struct{}

// WithSourceAddress returns ctx carrying the address a request came from, which
// audit events record.
func WithSourceAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceAddressKey{}, addr)
}

// SourceAddress returns the address carried by ctx, or "".
func SourceAddress(ctx context.Context) string {
	a, _ := ctx.Value(sourceAddressKey{}).(string)
	return a
}

// Bounds of what one event keeps; longer values are cut (with "…").
const (
	maxAuditField       = 1024 // bytes of each text field and detail value
	maxAuditDetailKey   = 64   // bytes of a detail key
	maxAuditDetailItems = 32   // detail entries, the first in key order kept
)

// auditRedacted replaces a value that holds a credential.
const auditRedacted = "[redacted]"

// ChainEvent returns e appended after prev: normalized, with Seq prev.Seq+1,
// PrevHash prev.Hash and its Hash computed. Stores call it inside the
// transaction that reads prev (the head) and writes e, so that the rule is
// written once, here.
//
// Normalizing makes e exactly what a store reads back: Time is cut to
// microseconds in UTC; text is made valid UTF-8 and cut to 1 KiB; Detail keeps
// its first 32 non-empty keys in byte order (counting the rest under
// "detail_truncated"); and any field that holds a client secret, a refresh
// token or a JWT is replaced by "[redacted]", so the log never holds a
// credential whatever a recorder passes.
//
// Hash is the lower-case hex SHA-256 of this encoding, where str(s) is the
// uvarint length of s followed by its bytes and i64 is 8 bytes big-endian:
//
//	str("berth-audit-v1") str(PrevHash) i64(Seq) i64(Time in Unix µs)
//	str(Actor) str(ActorID) str(Source) str(Action) str(Target) str(Result)
//	str(Reason) str(RequestID) str(CredentialID) str(Connection) str(Pipeline)
//	uvarint(len(Detail)) then str(key) str(value) for each key in byte order
//
// so that anyone can verify an exported log without berth.
func ChainEvent(prev AuditLink, e AuditEvent) AuditEvent {
	e = normalizeAuditEvent(e)
	e.Seq = prev.Seq + 1
	e.PrevHash = prev.Hash
	e.Hash = auditHash(&e)
	return e
}

func normalizeAuditEvent(e AuditEvent) AuditEvent {
	e.Time = time.UnixMicro(e.Time.UnixMicro()).UTC()
	for _, p := range []*string{&e.Actor, &e.ActorID, &e.Source, &e.Target, &e.RequestID, &e.CredentialID, &e.Connection, &e.Pipeline} {
		*p = auditText(*p, maxAuditField)
	}
	e.Action = AuditAction(auditText(string(e.Action), maxAuditDetailKey))
	e.Result = AuditResult(auditText(string(e.Result), maxAuditDetailKey))
	e.Reason = Code(auditText(string(e.Reason), maxAuditDetailKey))
	if len(e.Detail) == 0 {
		e.Detail = nil
		return e
	}
	// A new map: the recorder's stays as it was.
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		if k != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	d := make(map[string]string, min(len(keys), maxAuditDetailItems+1))
	for i, k := range keys {
		if i == maxAuditDetailItems {
			d["detail_truncated"] = strconv.Itoa(len(keys) - i)
			break
		}
		d[auditText(k, maxAuditDetailKey)] = auditText(e.Detail[k], maxAuditField)
	}
	if len(d) == 0 {
		d = nil
	}
	e.Detail = d
	return e
}

// auditText returns s as an event keeps it: redacted when it holds a
// credential, valid UTF-8, on one line with unsafe runes escaped
// (EscapeLine), at most n bytes.
func auditText(s string, n int) string {
	if holdsCredential(s) {
		return auditRedacted
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = EscapeLine(s) // a value a caller chose never forges a line of berth audit
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// credentialPrefixes start the value of every kind of credential berth
// issues: client secrets, refresh tokens, personal access tokens, browser
// sessions, device codes and webhook signing secrets. Each is "br", a letter
// and '_' (TestCredentialPrefixes), and a hint keeps SecretHintLength
// characters of any of them.
var credentialPrefixes = [...]string{SecretPrefix, RefreshTokenPrefix, PATPrefix, SessionValuePrefix, DeviceCodePrefix, WebhookSecretPrefix}

// credentialPrefixLength is the length of every credential prefix.
const credentialPrefixLength = len(SecretPrefix)

// credentialPrefixed reports whether s starts with a credential prefix.
func credentialPrefixed(s string) bool {
	for _, p := range credentialPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// LooksLikeCredential reports whether s starts like the value of a
// credential berth issues (credentialPrefixes), so that a message about a
// value given in the wrong place never repeats it.
func LooksLikeCredential(s string) bool { return credentialPrefixed(s) }

// RedactCredential returns s, or "[redacted]" when it holds more of a
// credential berth issues than its hint, or a JWT: what logs write of a value
// a caller chose, such as a URL path where a secret was pasted for an id.
func RedactCredential(s string) string {
	if holdsCredential(s) {
		return auditRedacted
	}
	return s
}

// holdsCredential reports whether s holds more of a credential berth issues
// (credentialPrefixes) than its hint, or something shaped like a JWT (three
// base64url segments, the first a JSON object).
func holdsCredential(s string) bool {
	// Every prefix ends in '_', and a JWT holds '.': most values hold
	// neither, and this runs on every field of every event.
	if strings.IndexByte(s, '_') < 0 && strings.IndexByte(s, '.') < 0 {
		return false
	}
	for rest := s; ; {
		i := strings.Index(rest, "br")
		if i < 0 {
			break
		}
		rest = rest[i:]
		if credentialPrefixed(rest) && leadingBase62(rest[credentialPrefixLength:]) > SecretHintLength-credentialPrefixLength {
			return true
		}
		rest = rest[2:]
	}
	for rest := s; ; {
		i := strings.Index(rest, "eyJ")
		if i < 0 {
			return false
		}
		rest = rest[i:]
		if looksLikeJWT(rest) {
			return true
		}
		// A later start in the same run of base64url characters has a
		// shorter first segment and the same continuation, so it fails too:
		// skipping the run keeps this linear in len(s) (it sees requests
		// before authentication).
		j := 3
		for j < len(rest) && isBase64URL(rest[j]) {
			j++
		}
		rest = rest[j:]
	}
}

// RedactCredentials returns s with each credential berth issues in it (more
// of one than its hint) replaced by its prefix and "[redacted]", and
// each JWT by "[redacted]": what a message keeps of a value a caller chose,
// which may be a secret pasted into the wrong field. The rest of s stays.
func RedactCredentials(s string) string {
	if !holdsCredential(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		rest := s[i:]
		if credentialPrefixed(rest) {
			if n := leadingBase62(rest[credentialPrefixLength:]); n > SecretHintLength-credentialPrefixLength {
				b.WriteString(rest[:credentialPrefixLength])
				b.WriteString(auditRedacted)
				i += credentialPrefixLength + n
				continue
			}
		}
		if strings.HasPrefix(rest, "eyJ") {
			if n := jwtLength(rest); n > 0 {
				b.WriteString(auditRedacted)
				i += n
				continue
			}
			// As in holdsCredential: the rest of this run is no JWT either.
			j := 3
			for j < len(rest) && isBase64URL(rest[j]) {
				j++
			}
			b.WriteString(rest[:j])
			i += j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// jwtLength returns the length of the compact JWS or JWE s starts with
// (looksLikeJWT), or 0.
func jwtLength(s string) int {
	if !looksLikeJWT(s) {
		return 0
	}
	n := 0
	for n < len(s) && (isBase64URL(s[n]) || s[n] == '.') {
		n++
	}
	return n
}

func leadingBase62(s string) int {
	n := 0
	for n < len(s) && strings.IndexByte(base62, s[n]) >= 0 {
		n++
	}
	return n
}

// looksLikeJWT reports whether s starts with a compact JWS or JWE: base64url
// segments separated by dots, at least three, the first two at least 8 long.
func looksLikeJWT(s string) bool {
	segments, length := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isBase64URL(s[i]) {
			length++
			continue
		}
		segments++
		if segments <= 2 && length < 8 {
			return false
		}
		if i == len(s) || s[i] != '.' || segments == 3 {
			return segments >= 3
		}
		length = 0
	}
	return false
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

const auditHashVersion = "berth-audit-v1"

// auditHash computes e.Hash from e.PrevHash and e's content, as ChainEvent
// documents; it reads e exactly as it is.
func auditHash(e *AuditEvent) string {
	var buf [512]byte
	sum := sha256.Sum256(appendAuditCanonical(buf[:0], e))
	return hex.EncodeToString(sum[:])
}

// appendAuditCanonical appends the encoding ChainEvent documents.
func appendAuditCanonical(b []byte, e *AuditEvent) []byte {
	b = appendAuditString(b, auditHashVersion)
	b = appendAuditString(b, e.PrevHash)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range [...]string{e.Actor, e.ActorID, e.Source, string(e.Action), e.Target, string(e.Result),
		string(e.Reason), e.RequestID, e.CredentialID, e.Connection, e.Pipeline} {
		b = appendAuditString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Detail)))
	switch len(e.Detail) {
	case 0:
	case 1:
		for k, v := range e.Detail {
			b = appendAuditString(b, k)
			b = appendAuditString(b, v)
		}
	default:
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendAuditString(b, k)
			b = appendAuditString(b, e.Detail[k])
		}
	}
	return b
}

func appendAuditString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBinary appends e's binary form, which stores may keep: the encoding
// its Hash is computed over (see ChainEvent) followed by str(Hash). It never
// fails.
func (e AuditEvent) AppendBinary(b []byte) ([]byte, error) {
	b = appendAuditCanonical(b, &e)
	return appendAuditString(b, e.Hash), nil
}

// MarshalBinary returns e's binary form; see AppendBinary.
func (e AuditEvent) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil) }

// UnmarshalBinary reads the binary form AppendBinary writes, exactly: bytes
// left over, a field cut short or another version is an error. It checks
// the form only; whether Hash matches is AuditVerifier's to say.
func (e *AuditEvent) UnmarshalBinary(data []byte) error {
	d := auditDecoder{b: data}
	if v := d.str(); v != auditHashVersion {
		if d.err == nil {
			d.err = fmt.Errorf("version %q, not %s", Truncate(v, 20), auditHashVersion)
		}
		return fmt.Errorf("decode audit event: %w", d.err)
	}
	var out AuditEvent
	out.PrevHash = d.str()
	out.Seq = int64(d.u64())
	out.Time = time.UnixMicro(int64(d.u64())).UTC()
	out.Actor, out.ActorID, out.Source = d.str(), d.str(), d.str()
	out.Action, out.Target, out.Result = AuditAction(d.str()), d.str(), AuditResult(d.str())
	out.Reason, out.RequestID, out.CredentialID = Code(d.str()), d.str(), d.str()
	out.Connection, out.Pipeline = d.str(), d.str()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)/2) { // each entry takes at least two bytes
			return fmt.Errorf("decode audit event: %d detail entries in %d bytes", n, len(d.b))
		}
		out.Detail = make(map[string]string, n)
		for range n {
			k := d.str()
			out.Detail[k] = d.str()
		}
	}
	out.Hash = d.str()
	switch {
	case d.err != nil:
		return fmt.Errorf("decode audit event: %w", d.err)
	case len(d.b) > 0:
		return fmt.Errorf("decode audit event %d: %d bytes left over", out.Seq, len(d.b))
	}
	*e = out
	return nil
}

// auditDecoder reads the binary form; the first error sticks.
type auditDecoder struct {
	b   []byte
	err error
}

func (d *auditDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("malformed length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *auditDecoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("a field of %d bytes where %d are left", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *auditDecoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = fmt.Errorf("cut short")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// AuditChainVisitor receives the stored chain, read in one consistent
// snapshot: Begin with its anchor (the point the first retained event chains
// to: the zero AuditLink, or the last event retention deleted) and its head
// (the last event appended), then Event for every retained event in Seq
// order, then End. A non-nil error from any of them stops the reading and is
// returned as it is. AuditVerifier is the visitor that verifies.
type AuditChainVisitor interface {
	Begin(anchor, head AuditLink) error
	Event(e AuditEvent) error
	End() error
}

// AuditVerifier verifies a chain as an AuditChainVisitor. Each method returns
// audit_tampered, with the first Seq that does not verify in Detail "seq",
// when:
//   - an event is missing (a gap in Seq after the anchor), or out of order;
//   - an event's PrevHash is not the Hash of the event before it (or of the
//     anchor): the event before was replaced, or this one was;
//   - an event's content does not hash to its Hash: it was edited;
//   - the last event is not the recorded head: the tail was deleted.
//
// A verifier is used once; it is not safe for concurrent use.
type AuditVerifier struct {
	anchor, head, last AuditLink
	n                  int64
}

// Begin starts verifying a chain that starts after anchor and ends at head.
func (v *AuditVerifier) Begin(anchor, head AuditLink) error {
	v.anchor, v.head, v.last, v.n = anchor, head, anchor, 0
	return nil
}

// Event verifies the next event.
func (v *AuditVerifier) Event(e AuditEvent) error {
	want := v.last.Seq + 1
	switch {
	case e.Seq > want:
		missing := fmt.Sprintf("event %d is", want)
		if e.Seq-1 > want {
			missing = fmt.Sprintf("events %d to %d are", want, e.Seq-1)
		}
		return tampered(want, "audit %s missing: event %d follows %s", missing, e.Seq, v.describeLast())
	case e.Seq < want:
		return tampered(e.Seq, "audit event %d appears after %s: the log is out of order or holds it twice", e.Seq, v.describeLast())
	case e.PrevHash != v.last.Hash:
		return tampered(e.Seq, "audit event %d does not chain to %s: it names the previous hash %s, which is %s; that event, or this one, was replaced",
			e.Seq, v.describeLast(), short(e.PrevHash), short(v.last.Hash))
	}
	if h := auditHash(&e); h != e.Hash {
		return tampered(e.Seq, "audit event %d was edited after it was written: its content hashes to %s, not to its stored hash %s",
			e.Seq, short(h), short(e.Hash))
	}
	v.last = e.Link()
	v.n++
	return nil
}

// End checks that the chain ended at its recorded head.
func (v *AuditVerifier) End() error {
	switch {
	case v.last == v.head:
		return nil
	case v.last.Seq < v.head.Seq:
		missing := fmt.Sprintf("event %d was", v.head.Seq)
		if v.head.Seq > v.last.Seq+1 {
			missing = fmt.Sprintf("events %d to %d were", v.last.Seq+1, v.head.Seq)
		}
		return tampered(v.last.Seq+1, "the audit log ends at %s, but its head records event %d: %s deleted", v.describeLast(), v.head.Seq, missing)
	case v.last.Seq > v.head.Seq:
		return tampered(v.head.Seq+1, "the audit log holds events up to %d, past its recorded head, event %d: the head was rolled back", v.last.Seq, v.head.Seq)
	}
	return tampered(v.last.Seq, "audit event %d is not the event the head recorded (hash %s, recorded %s): it was replaced",
		v.last.Seq, short(v.last.Hash), short(v.head.Hash))
}

// Events returns how many events verified.
func (v *AuditVerifier) Events() int64 { return v.n }

// Anchor returns the anchor Begin received.
func (v *AuditVerifier) Anchor() AuditLink { return v.anchor }

// Head returns the last point that verified.
func (v *AuditVerifier) Head() AuditLink { return v.last }

func (v *AuditVerifier) describeLast() string {
	switch {
	case v.n > 0:
		return fmt.Sprintf("event %d", v.last.Seq)
	case v.last.Seq == 0:
		return "the start of the log"
	}
	return fmt.Sprintf("the retention anchor (event %d, pruned)", v.last.Seq)
}

func tampered(seq int64, format string, args ...any) *Error {
	return Errorf(CodeAuditTampered, format, args...).
		WithHint("the log was changed outside berth: events before %d verify; compare metadata.db with a backup (berth audit --after %d --data BACKUP) and keep this copy as evidence", seq, max(seq-2, 0)).
		WithDetail("seq", seq)
}

// short abbreviates a hash for messages.
func short(h string) string {
	if h == "" {
		return `""`
	}
	return Truncate(h, 12)
}

// VerifyChain verifies events, in Seq order, as the chain from anchor to head;
// see AuditVerifier.
func VerifyChain(anchor, head AuditLink, events []AuditEvent) error {
	var v AuditVerifier
	_ = v.Begin(anchor, head)
	for _, e := range events {
		if err := v.Event(e); err != nil {
			return err
		}
	}
	return v.End()
}

// AuditFilter selects audit events. The zero filter selects all of them.
type AuditFilter struct {
	// Since (inclusive) and Until (exclusive) bound Time when not zero.
	Since, Until time.Time
	// Principal selects events whose Actor or ActorID equals it.
	Principal string
	// Repository selects events whose Target equals it; "NS/*" selects every
	// Target under "NS/".
	Repository string
	Action     AuditAction
	Result     AuditResult
	// Code selects events whose Reason equals it.
	Code Code
	// Connection selects events whose Connection equals it.
	Connection string
	// After and Before, when positive, select Seq > After and Seq < Before:
	// cursors for paging forward and back.
	After, Before int64
	// Limit, when positive, returns at most this many: the first ones, or the
	// last ones when Last is set. Either way they come in Seq order.
	Limit int
	Last  bool
}

// Match reports whether f selects e, by every criterion but Limit and Last.
func (f AuditFilter) Match(e AuditEvent) bool {
	switch {
	case !f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Principal != "" && e.Actor != f.Principal && e.ActorID != f.Principal,
		f.Action != "" && e.Action != f.Action,
		f.Result != "" && e.Result != f.Result,
		f.Code != "" && e.Reason != f.Code,
		f.Connection != "" && e.Connection != f.Connection,
		f.After > 0 && e.Seq <= f.After,
		f.Before > 0 && e.Seq >= f.Before:
		return false
	case f.Repository == "":
		return true
	}
	if ns, ok := strings.CutSuffix(f.Repository, "/*"); ok {
		return len(e.Target) > len(ns)+1 && e.Target[len(ns)] == '/' && e.Target[:len(ns)] == ns
	}
	return e.Target == f.Repository
}

// AuditStore persists the audit log. It decides nothing: chaining is
// ChainEvent's, verification AuditVerifier's. Events are only appended; the
// only deletion is retention's, from the oldest end.
type AuditStore interface {
	// AppendAuditEvents appends events in the order given, in one
	// transaction: it reads the head, chains each event after it with
	// ChainEvent (which assigns Seq, PrevHash and Hash) and moves the head to
	// the last. On success the chained events are written back into events; on
	// failure nothing is stored and events is unchanged. Appending none does
	// nothing.
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	// FindAuditEvents returns the events f selects, in Seq order, each exactly
	// as stored (Detail nil when empty). It returns an empty result, not an
	// error, when none matches.
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// AuditChain reads the anchor, the head and every retained event in one
	// consistent snapshot and passes them to v (see AuditChainVisitor),
	// returning v's first error as it is.
	AuditChain(ctx context.Context, v AuditChainVisitor) error
	// DeleteAuditEventsBefore deletes the oldest events, in Seq order, up to
	// (not including) the first whose Time is not before t, so that what is
	// left is an unbroken chain, and makes the last deleted event the anchor.
	// A store that keeps each append as one unit may stop earlier: at the
	// first event of the append that holds that event. It returns how many
	// it deleted.
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error)
}

// ParseAuditTime reads a time bound of an audit query, given as name (the flag
// or parameter it came from, for messages): an RFC 3339 time, or a positive
// duration back from now as ParseLifetime reads it ("90m", "12h", "7d"). The
// empty string is no bound.
func ParseAuditTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := ParseLifetime(s, 100*365*24*time.Hour)
	if err != nil {
		return time.Time{}, Errorf(CodeInvalid, "%s %q is neither a duration nor an RFC 3339 time", name, s).
			WithHint("%s 24h, %s 7d, or %s 2026-03-14T15:00:00Z", name, name, name)
	}
	return now.Add(-d), nil
}

// ParseAuditRepository reads a repository or a namespace NS/* of an audit query.
func ParseAuditRepository(name, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	scope, err := ParseScope(s)
	if err != nil || scope.Kind() == ScopeRegistry {
		return "", Errorf(CodeInvalid, "%s %q is not a repository or a namespace", name, s).
			WithHint("%s team/app, or %s team/* for every repository under team/", name, name)
	}
	return s, nil
}

// ParseAuditCode reads one of the reason codes for an audit query.
func ParseAuditCode(name, s string) (Code, error) {
	if s == "" {
		return "", nil
	}
	if c := Code(s); LookupCode(c).Code == c {
		return c, nil
	}
	return "", Errorf(CodeInvalid, "%s %q is not a reason code", name, s).
		WithHint("use a code that refusals carry, such as role_missing, secret_expired or token_expired")
}

// NewAuthFailureEvent returns the event of credentials r presented that were
// refused with err: auth.basic or auth.bearer, naming the client id claimed
// (never what looks like a secret).
func NewAuthFailureEvent(r *http.Request, err error) AuditEvent {
	a := AuditAuthBearer
	user, _, basic := r.BasicAuth()
	if basic {
		a = AuditAuthBasic
	}
	e := NewAuditEvent(r.Context(), a, "", err)
	e.Actor = AuditClientID(user)
	return e
}
