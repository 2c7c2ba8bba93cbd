package oci_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oci"
)

// auditLog keeps the events a handler records.
type auditLog struct {
	mu     sync.Mutex
	events []berth.AuditEvent
}

func (a *auditLog) Record(e berth.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// TestRegistryRefusesChangesSentFromAnotherSite: a page of another site
// cannot start an upload (or delete) through a browser that keeps the
// registry's credentials; the refusal comes before anything else and is
// audited with its reason. Registry clients, which send no such header, and
// reads from anywhere go on as before.
func TestRegistryRefusesChangesSentFromAnotherSite(t *testing.T) {
	audit := &auditLog{}
	meta, blobs := openStores(t, t.TempDir())
	r := serveRegistry(t, meta, blobs, func(h *oci.Handler) { h.Audit = audit })
	forged := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	resp, body := r.do(http.MethodPost, "/v2/team/app/blobs/uploads/", forged, nil)
	expectError(t, resp, body, http.StatusForbidden, berth.CodeCrossSiteRefused)
	resp, body = r.do(http.MethodDelete, "/v2/team/app/manifests/v1", forged, nil)
	expectError(t, resp, body, http.StatusForbidden, berth.CodeCrossSiteRefused)
	audit.mu.Lock()
	n := len(audit.events)
	refused := n > 0 && audit.events[n-1].Reason == berth.CodeCrossSiteRefused
	audit.mu.Unlock()
	if n != 2 || !refused {
		t.Fatalf("audited %d events (last refused with cross_site_refused: %v), want the 2 refusals", n, refused)
	}

	if resp, body := r.do(http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a client's upload: %d %s", resp.StatusCode, body)
	}
	if resp, body := r.do(http.MethodGet, "/v2/", forged, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a read from another site: %d %s", resp.StatusCode, body)
	}
}
