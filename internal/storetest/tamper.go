package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// What the engines' own audit tests share. Tampering needs raw access to an
// engine's tables, so those tests live beside each engine; they build their
// events and judge the verdicts with these.

// AuditEpoch is the time of TamperEvent(0).
var AuditEpoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// TamperEvent is the nth event of a tampering test: a denied push, one a
// second from AuditEpoch, whose detail holds n.
func TamperEvent(n int) berth.AuditEvent {
	return berth.AuditEvent{
		Time: AuditEpoch.Add(time.Duration(n) * time.Second), Actor: "ci-web", Action: berth.AuditRegistryPush,
		Target: "team/app", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing,
		Detail: map[string]string{"missing_role": "push", "n": fmt.Sprint(n)},
	}
}

// WantTamperedAt fails t unless err is audit_tampered naming seq as the
// first broken event (detail "seq").
func WantTamperedAt(t *testing.T, what string, err error, seq int64) {
	t.Helper()
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodeAuditTampered {
		t.Fatalf("%s: returned %v, want audit_tampered", what, err)
	}
	if got, _ := e.Detail["seq"].(int64); got != seq {
		t.Errorf("%s: first broken seq %v, want %d (%s)", what, e.Detail["seq"], seq, e.Message)
	}
}
