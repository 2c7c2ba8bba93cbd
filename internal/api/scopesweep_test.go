package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// apiRoutes is every endpoint of /api/v1, with its path parameters filled
// in. TestEveryEndpointNeedsTheAPIScope walks it.
var apiRoutes = []string{
	"GET /api/v1/access/check?principal=admin&action=pull&repository=team/app",
	"GET /api/v1/audit",
	"GET /api/v1/audit/verify",
	"GET /api/v1/connections",
	"POST /api/v1/connections",
	"GET /api/v1/connections/x",
	"DELETE /api/v1/connections/x",
	"POST /api/v1/connections/x/authorize",
	"POST /api/v1/connections/x/convert",
	"POST /api/v1/connections/x/disable",
	"POST /api/v1/connections/x/dismiss",
	"POST /api/v1/connections/x/enable",
	"GET /api/v1/connections/x/history",
	"POST /api/v1/connections/x/permit",
	"GET /api/v1/connections/x/requests",
	"POST /api/v1/connections/x/save",
	"POST /api/v1/connections/x/unauthorize",
	"GET /api/v1/connections/x/verify",
	"POST /api/v1/gc",
	"GET /api/v1/idps",
	"POST /api/v1/idps",
	"GET /api/v1/idps/x",
	"DELETE /api/v1/idps/x",
	"GET /api/v1/immutable",
	"POST /api/v1/immutable",
	"DELETE /api/v1/immutable?scope=team/*",
	"GET /api/v1/keys",
	"POST /api/v1/keys/rotate",
	"GET /api/v1/pipelines",
	"POST /api/v1/pipelines",
	"GET /api/v1/pipelines/x",
	"POST /api/v1/pipelines/x/keys",
	"DELETE /api/v1/pipelines/x",
	"GET /api/v1/principals",
	"POST /api/v1/principals",
	"GET /api/v1/principals/admin",
	"DELETE /api/v1/principals/admin",
	"POST /api/v1/principals/admin/disable",
	"POST /api/v1/principals/admin/enable",
	"GET /api/v1/principals/admin/secrets",
	"POST /api/v1/principals/admin/secrets",
	"DELETE /api/v1/principals/admin/secrets/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
	"POST /api/v1/pull-secrets",
	"GET /api/v1/quotas",
	"POST /api/v1/quotas",
	"DELETE /api/v1/quotas/team/*",
	"GET /api/v1/repositories",
	"GET /api/v1/repositories/team/app",
	"DELETE /api/v1/repositories/team/app",
	"GET /api/v1/retention",
	"POST /api/v1/retention",
	"POST /api/v1/retention/run",
	"GET /api/v1/retention/team/*",
	"DELETE /api/v1/retention/team/*",
	"GET /api/v1/roles",
	"POST /api/v1/roles",
	"DELETE /api/v1/roles?principal=admin&role=owner&scope=registry",
	"GET /api/v1/secrets",
	"POST /api/v1/secrets/revoke-leaked",
	"GET /api/v1/tags/team/app",
	"DELETE /api/v1/tags/team/app:v1",
	"GET /api/v1/tokens",
	"POST /api/v1/tokens",
	"DELETE /api/v1/tokens/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
	"GET /api/v1/upstreams",
	"POST /api/v1/upstreams",
	"GET /api/v1/upstreams/x",
	"PATCH /api/v1/upstreams/x",
	"DELETE /api/v1/upstreams/x",
	"GET /api/v1/upstreams/x/verify",
	"GET /api/v1/webhooks",
	"POST /api/v1/webhooks",
	"GET /api/v1/webhooks/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
	"DELETE /api/v1/webhooks/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70",
	"GET /api/v1/webhooks/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70/deliveries",
	"POST /api/v1/webhooks/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70/deliveries/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d71/redeliver",
}

// TestSweepCoversEveryEndpoint: apiRoutes names each endpoint New routes,
// and nothing else, so that an endpoint added later fails here until the
// sweep below covers it.
func TestSweepCoversEveryEndpoint(t *testing.T) {
	mux := api.New(api.Config{}).(*http.ServeMux)
	swept := map[string]bool{}
	for _, route := range apiRoutes {
		method, path, _ := strings.Cut(route, " ")
		_, pattern := mux.Handler(httptest.NewRequest(method, path, nil))
		if pattern == "/" {
			t.Errorf("%s reaches no endpoint", route)
		}
		swept[pattern] = true
	}
	for _, p := range api.Patterns() {
		if p != "/" && !swept[p] {
			t.Errorf("endpoint %s is not in apiRoutes: TestEveryEndpointNeedsTheAPIScope does not try it", p)
		}
	}
}

// TestEveryEndpointNeedsTheAPIScope: an owner's access token narrowed to
// one repository reaches no endpoint of the management API, the new ones
// (identity providers, upstreams, lifecycle rules, personal access tokens)
// included; one issued for registry:api:pull reaches no endpoint that
// changes something. Each is refused with scope_not_granted before the
// endpoint looks at anything (its own checks would answer not_found,
// invalid or role_missing).
func TestEveryEndpointNeedsTheAPIScope(t *testing.T) {
	s := apitest.New(t)
	narrow := adminToken(t, s, "repository:team/app:pull")
	read := adminToken(t, s, "registry:api:pull repository:team/app:pull,push,delete registry:catalog:*")
	for _, route := range apiRoutes {
		method, path, _ := strings.Cut(route, " ")
		body := any(nil)
		if method == http.MethodPost {
			body = "{}"
		}
		t.Run(route, func(t *testing.T) {
			callBearer(t, s, narrow, method, path, body).fails(t, berth.CodeScopeNotGranted)
			if method != http.MethodGet {
				callBearer(t, s, read, method, path, body).fails(t, berth.CodeScopeNotGranted)
			}
		})
	}
	// Nothing the refused requests asked for happened.
	call(t, s, adminCreds(s), "GET", "/api/v1/principals/admin", nil).ok(t, http.StatusOK, nil)
}

// TestEveryChangeIsAudited: every endpoint that is not a read records an
// audit event (auditActions), so that no change escapes the log.
func TestEveryChangeIsAudited(t *testing.T) {
	for _, p := range api.Patterns() {
		method, _, _ := strings.Cut(p, " ")
		if p == "/" || method == http.MethodGet || method == http.MethodHead {
			continue
		}
		if !api.Audited(p) {
			t.Errorf("endpoint %s changes something and records no audit event: add it to auditActions", p)
		}
	}
}
