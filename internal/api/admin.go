package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// The server's own maintenance, for the admin commands that run remotely:
// berth keys list|rotate, berth gc and berth audit verify. Each needs owner
// on registry.

// KeyRing lists and rotates the signing keys of the server (of every replica,
// on PostgreSQL).
type KeyRing interface {
	// Keys describes the keys, oldest first; the last one signs.
	Keys() []oauth.KeyInfo
	// Rotate adds a new signing key and retires the current one, and returns
	// the new key's id once the server signs with it.
	Rotate(ctx context.Context) (string, error)
}

// Collector runs one garbage collection on the server's stores, calling
// progress as it goes. It returns conflict when another replica is
// collecting.
type Collector interface {
	Collect(ctx context.Context, opts GCOptions, progress func(berth.GCProgress)) (berth.GCReport, error)
}

// GCOptions are the choices of one collection: DryRun removes nothing;
// Grace, when positive, replaces the configured grace period.
type GCOptions struct {
	DryRun bool
	Grace  time.Duration
}

func (h *handler) routeAdmin() {
	h.handle("GET /api/v1/keys", h.listKeys)
	h.handle("POST /api/v1/keys/rotate", h.rotateKeys)
	h.handle("POST /api/v1/gc", h.collect)
	h.handle("GET /api/v1/audit/verify", h.verifyAudit)
}

// Key is a signing key as GET /api/v1/keys lists it.
type Key struct {
	ID        string     `json:"id"`
	Algorithm string     `json:"algorithm"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	Signing   bool       `json:"signing"`
}

// KeyList is the answer of GET /api/v1/keys and POST /api/v1/keys/rotate
// (which also names the new key in Rotated).
type KeyList struct {
	Keys    []Key  `json:"keys"`
	Rotated string `json:"rotated,omitempty"`
}

// NewKeyList describes keys, oldest first, the last one signing.
func NewKeyList(keys []oauth.KeyInfo) KeyList {
	out := KeyList{Keys: make([]Key, 0, len(keys))}
	for i, k := range keys {
		j := Key{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.Created.UTC(), Signing: i == len(keys)-1}
		if !k.Retired.IsZero() {
			r := k.Retired.UTC()
			j.RetiredAt = &r
		}
		out.Keys = append(out.Keys, j)
	}
	return out
}

// unavailable is the refusal of an endpoint the server was built without.
func unavailable(what string) error {
	return berth.Errorf(berth.CodeNotFound, "this server does not offer %s through the management API", what).
		WithHint("run the command on the server's machine with --data DIR, or --db URL")
}

// listKeys is GET /api/v1/keys.
func (h *handler) listKeys(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "listing the signing keys"); err != nil {
		return err
	}
	if h.cfg.Keys == nil {
		return unavailable("its signing keys")
	}
	return writeJSON(w, http.StatusOK, NewKeyList(h.cfg.Keys.Keys()))
}

// rotateKeys is POST /api/v1/keys/rotate: tokens signed by the retired key
// keep verifying until they expire.
func (h *handler) rotateKeys(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "rotating the signing keys"); err != nil {
		return err
	}
	if h.cfg.Keys == nil {
		return unavailable("its signing keys")
	}
	kid, err := h.cfg.Keys.Rotate(r.Context())
	if err != nil {
		return err
	}
	noteTarget(r, kid)
	h.changed(r, c, "signing keys rotated", slog.String("key", kid))
	l := NewKeyList(h.cfg.Keys.Keys())
	l.Rotated = kid
	return writeJSON(w, http.StatusOK, l)
}

// GCLink is a blob link a collection removed.
type GCLink struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
}

// GCItem is a blob (ID its digest) or an upload (ID its id) a collection
// removed.
type GCItem struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
}

// GCReport is what a collection removed, or with DryRun would remove.
type GCReport struct {
	DryRun      bool     `json:"dry_run"`
	Links       []GCLink `json:"links"`
	Blobs       []GCItem `json:"blobs"`
	Uploads     []GCItem `json:"uploads"`
	BlobBytes   int64    `json:"blob_bytes"`
	UploadBytes int64    `json:"upload_bytes"`
}

// NewGCReport describes rep.
func NewGCReport(rep berth.GCReport, dryRun bool) GCReport {
	out := GCReport{DryRun: dryRun, BlobBytes: rep.BlobBytes, UploadBytes: rep.UploadBytes,
		Links: make([]GCLink, 0, len(rep.Links)), Blobs: make([]GCItem, 0, len(rep.Blobs)), Uploads: make([]GCItem, 0, len(rep.Uploads))}
	for _, l := range rep.Links {
		out.Links = append(out.Links, GCLink{l.Repository, l.Digest.String(), l.Size})
	}
	for _, b := range rep.Blobs {
		out.Blobs = append(out.Blobs, GCItem{b.Digest.String(), b.Size})
	}
	for _, u := range rep.Uploads {
		out.Uploads = append(out.Uploads, GCItem{u.ID, u.Size})
	}
	return out
}

// GCProgress is one step of a running collection.
type GCProgress struct {
	Phase   string `json:"phase"`
	Done    int    `json:"done"`
	Total   int    `json:"total"`
	Removed int    `json:"removed"`
}

// GCLine is one line of POST /api/v1/gc's answer (application/x-ndjson):
// progress while the collection runs, then either the report or the error
// that ended it.
type GCLine struct {
	Progress *GCProgress `json:"progress,omitempty"`
	Report   *GCReport   `json:"report,omitempty"`
	Error    *ErrorEntry `json:"error,omitempty"`
}

// gcProgressEvery spaces the progress lines of a collection.
const gcProgressEvery = time.Second

// collect is POST /api/v1/gc?dry_run=true&grace=1h: it runs a collection on
// the server and streams its progress, one JSON line at a time, then its
// report. A refusal before the collection starts (authentication, role,
// parameters, another collection running) is an ordinary error answer.
func (h *handler) collect(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	ctx := r.Context()
	if err := h.requireOwner(ctx, c, "collecting garbage"); err != nil {
		return err
	}
	if h.cfg.GC == nil {
		return unavailable("garbage collection")
	}
	q := r.URL.Query()
	var opts GCOptions
	if v := q.Get("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return berth.Errorf(berth.CodeInvalid, "dry_run %q is not true or false", berth.Truncate(v, 20))
		}
		opts.DryRun = b
	}
	if v := q.Get("grace"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return berth.Errorf(berth.CodeInvalid, "grace %q is not a duration such as 1h", berth.Truncate(v, 20)).
				WithHint("berth gc --grace 1h")
		}
		opts.Grace = max(d, time.Nanosecond) // 0 asked for: no grace at all
	}
	noteDetail(r, "dry_run", strconv.FormatBool(opts.DryRun))
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a collection may outlast the server's write timeout
	enc := json.NewEncoder(w)
	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
	}
	last := time.Time{}
	rep, err := h.cfg.GC.Collect(ctx, opts, func(p berth.GCProgress) {
		if now := time.Now(); now.Sub(last) < gcProgressEvery && p.Done != p.Total {
			return
		}
		last = time.Now()
		start()
		_ = enc.Encode(GCLine{Progress: &GCProgress{p.Phase, p.Done, p.Total, p.Removed}})
		_ = rc.Flush()
	})
	if err != nil && !started {
		return err
	}
	start()
	if err != nil {
		// Streaming began: the error is the last line, in the API's shape.
		e := berth.AsError(err)
		if e == nil {
			h.cfg.Logger.ErrorContext(ctx, "garbage collection failed", slog.Any("err", err))
			e = berth.Errorf(berth.CodeInternal, "internal error (request id %s)", berth.RequestID(ctx))
		}
		_ = enc.Encode(GCLine{Error: new(h.errorEntry(e, berth.RequestID(ctx)))})
		return nil
	}
	out := NewGCReport(rep, opts.DryRun)
	noteDetail(r, "blobs", strconv.Itoa(len(out.Blobs)))
	noteDetail(r, "blob_bytes", strconv.FormatInt(out.BlobBytes, 10))
	return enc.Encode(GCLine{Report: &out})
}

// AuditVerification is the answer of GET /api/v1/audit/verify: the chain
// verified, how many events it holds, and its anchor and head.
type AuditVerification struct {
	Verified bool            `json:"verified"`
	Events   int64           `json:"events"`
	Anchor   berth.AuditLink `json:"anchor"`
	Head     berth.AuditLink `json:"head"`
}

// VerifyAudit checks the audit log's hash chain in st.
func VerifyAudit(ctx context.Context, st berth.AuditStore) (AuditVerification, error) {
	var v berth.AuditVerifier
	if err := st.AuditChain(ctx, &v); err != nil {
		return AuditVerification{}, err
	}
	return AuditVerification{Verified: true, Events: v.Events(), Anchor: v.Anchor(), Head: v.Head()}, nil
}

// verifyAudit is GET /api/v1/audit/verify: audit_tampered names the first
// event that does not verify.
func (h *handler) verifyAudit(w http.ResponseWriter, r *http.Request, c *berth.Caller) error {
	if err := h.requireOwner(r.Context(), c, "verifying the audit log"); err != nil {
		return err
	}
	v, err := VerifyAudit(r.Context(), h.cfg.Store)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// noteDetail adds k=v to the audit detail of the change r makes.
func noteDetail(r *http.Request, k, v string) {
	if note, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		if note.detail == nil {
			note.detail = map[string]string{}
		}
		note.detail[k] = v
	}
}
