package oci

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// Handler serves /v2/. Its fields are its dependencies; all are required except
// Challenge.
type Handler struct {
	Meta    berth.MetadataStore
	Blobs   berth.BlobStore
	Uploads berth.UploadStore
	Logger  *slog.Logger
	// Now and NewID are injected so tests control time and ids.
	Now   func() time.Time
	NewID func() string
	// CommitLock is held shared while an upload becomes a linked blob and
	// exclusively by garbage collection while it deletes one, so the two never
	// interleave on the same digest within a process.
	CommitLock *sync.RWMutex
	// MaxManifestSize bounds a manifest body; the spec asks for at least 4 MiB.
	MaxManifestSize int64
	// Challenge, when set, returns the WWW-Authenticate value sent with 401s.
	Challenge func(*http.Request) string
}

type handlerFunc func(h *Handler, w http.ResponseWriter, r *http.Request, rt route) error

// endpoints maps each endpoint family to its handlers by method.
var endpoints = map[kind]map[string]handlerFunc{
	kindBase:        {"GET": (*Handler).base, "HEAD": (*Handler).base},
	kindCatalog:     {"GET": (*Handler).catalog},
	kindTags:        {"GET": (*Handler).tags},
	kindManifest:    {"GET": (*Handler).getManifest, "HEAD": (*Handler).getManifest, "PUT": (*Handler).putManifest, "DELETE": (*Handler).deleteManifest},
	kindBlob:        {"GET": (*Handler).getBlob, "HEAD": (*Handler).getBlob, "DELETE": (*Handler).deleteBlob},
	kindUploadStart: {"POST": (*Handler).startUpload},
	kindUpload:      {"GET": (*Handler).uploadStatus, "PATCH": (*Handler).patchUpload, "PUT": (*Handler).putUpload, "DELETE": (*Handler).cancelUpload},
	kindReferrers:   {"GET": (*Handler).referrers},
}

// ServeHTTP routes a /v2/ request and renders any error it returns.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := h.serve(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	rt := parseRoute(r.URL.Path)
	methods, ok := endpoints[rt.Kind]
	if !ok {
		return berth.Errorf(berth.CodeNotFound, "no registry endpoint at %s", r.URL.Path).
			WithHint("registry paths look like /v2/NAME/manifests/REFERENCE or /v2/NAME/blobs/DIGEST")
	}
	fn, ok := methods[r.Method]
	if !ok {
		return berth.Errorf(berth.CodeUnsupported, "method %s is not supported on this endpoint", r.Method)
	}
	if rt.Repo != "" {
		if err := berth.ValidateRepositoryName(rt.Repo); err != nil {
			return err
		}
	}
	return fn(h, w, r, rt)
}

// base answers the API version check.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#determining-support
func (h *Handler) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}
