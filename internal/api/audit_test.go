package api_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// TestAuditPages filters and pages the audit log through GET /api/v1/audit,
// and refuses it to a principal that does not own the registry.
func TestAuditPages(t *testing.T) {
	s := apitest.New(t)
	now := s.Clock.Now()
	events := []berth.AuditEvent{
		{Time: now.Add(-3 * time.Hour), Actor: "ci", Action: berth.AuditRegistryPush, Target: "team/web", Result: berth.AuditAllowed},
		{Time: now.Add(-2 * time.Hour), Actor: "ci", Action: berth.AuditRegistryPush, Target: "team/api", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing},
		{Time: now.Add(-90 * time.Minute), Actor: "bot", Action: berth.AuditRegistryPull, Target: "ops/x", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing},
		{Time: now.Add(-30 * time.Minute), Actor: "ci", Action: berth.AuditRegistryPull, Target: "team/web", Result: berth.AuditAllowed},
	}
	for _, e := range events {
		if err := s.Store.AppendAuditEvents(context.Background(), []berth.AuditEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	page := func(query string) api.AuditPage {
		t.Helper()
		var p api.AuditPage
		call(t, s, adminCreds(s), "GET", "/api/v1/audit?"+query, nil).ok(t, 200, &p)
		return p
	}
	targets := func(p api.AuditPage) []string {
		var out []string
		for _, e := range p.Events {
			out = append(out, e.Target)
		}
		return out
	}
	if got := targets(page("result=denied&code=role_missing")); len(got) != 2 || got[0] != "team/api" || got[1] != "ops/x" {
		t.Errorf("denied role_missing: %v", got)
	}
	if got := targets(page("repository=team/*&since=150m")); len(got) != 2 || got[0] != "team/api" || got[1] != "team/web" {
		t.Errorf("team/* in the last 150 minutes: %v", got)
	}
	first := page("principal=ci&limit=2")
	if len(first.Events) != 2 || first.Next == 0 {
		t.Fatalf("first page of ci: %+v", first)
	}
	rest := page("principal=ci&limit=2&after=" + strconv.FormatInt(first.Next, 10))
	if got := targets(rest); len(got) != 1 || got[0] != "team/web" || rest.Next != 0 {
		t.Errorf("second page of ci: %v next %d", got, rest.Next)
	}

	call(t, s, adminCreds(s), "GET", "/api/v1/audit?code=no_such_code", nil).fails(t, berth.CodeInvalid)
	_, secret := s.AddPrincipal(t, "reader", apitest.Role{Role: "pull", Scope: "team/*"})
	r, _ := s.Store.FindPrincipalByName(context.Background(), "reader")
	call(t, s, creds{r.ClientID, secret}, "GET", "/api/v1/audit", nil).fails(t, berth.CodeRoleMissing)
}
