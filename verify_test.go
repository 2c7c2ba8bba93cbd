package berth_test

import (
	"testing"

	"github.com/berth-dev/berth"
)

func TestConnectionReportErr(t *testing.T) {
	ok := berth.ConnectionReport{Connection: "web", OK: true, Checks: []berth.Check{
		{Name: "connection", Status: berth.CheckOK},
		{Name: "secret", Status: berth.CheckWarn, Code: berth.CodeSecretExpired},
	}}
	if err := ok.Err(); err != nil {
		t.Errorf("a report with a warning only: %v", err)
	}
	failed := berth.ConnectionReport{Connection: "web", Checks: []berth.Check{
		{Name: "connection", Status: berth.CheckOK},
		{Name: "access team/app", Status: berth.CheckFail, Code: berth.CodeRoleMissing, Hint: "berth role assign --principal ci --role push --scope team/app"},
		{Name: "secret", Status: berth.CheckFail, Code: berth.CodeSecretExpired},
	}}
	err := failed.Err()
	if berth.ErrorCode(err) != berth.CodeRoleMissing {
		t.Fatalf("Err() = %v, want the first failure's role_missing", err)
	}
	if e := berth.AsError(err); e.Hint != failed.Checks[1].Hint || e.Detail["check"] != "access team/app" {
		t.Errorf("Err() hint %q, detail %v", e.Hint, e.Detail)
	}
	noCode := berth.ConnectionReport{Connection: "web", Checks: []berth.Check{{Name: "x", Status: berth.CheckFail}}}
	if berth.ErrorCode(noCode.Err()) != berth.CodeInvalid {
		t.Errorf("a failure without a code: %v", noCode.Err())
	}
}
