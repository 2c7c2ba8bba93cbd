package api_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// A request body the API cannot take is refused in the API's words: which
// field, which JSON type it must be, or where the JSON breaks; never Go's
// struct and type names.
func TestRequestBodyRefusals(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	for _, tc := range []struct {
		body  string
		field string   // the detail naming the field, when one is at fault
		want  []string // in the message: the JSON types, where the JSON breaks
	}{
		{`{"name": 42}`, "name", []string{"a string", "not number"}},
		{`{"name": "ci", "kind": ["service"]}`, "kind", []string{"a string", "not array"}},
		{`{"name": "ci", "nickname": "x"}`, "nickname", []string{"does not take"}},
		{`{"name": "ci",`, "", []string{"not valid JSON", "ends too soon"}},
		{`{"name" "ci"}`, "", []string{"not valid JSON", "byte"}},
		{`[1, 2]`, "", []string{"must be an object", "not array"}},
		{`{"name": "ci", "kind": 1e999}`, "kind", []string{"a string", "not number"}},
	} {
		e := call(t, s, admin, "POST", "/api/v1/principals", tc.body).fails(t, berth.CodeInvalid)
		msg, _ := e["message"].(string)
		if detail, _ := e["detail"].(map[string]any); tc.field != "" && (detail == nil || detail["field"] != tc.field) {
			t.Errorf("%s: detail %v, want field %q", tc.body, e["detail"], tc.field)
		}
		if hint, _ := e["hint"].(string); hint == "" {
			t.Errorf("%s: no hint", tc.body)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q lacks %q", tc.body, msg, w)
			}
		}
		for _, goWord := range []string{"Go struct", "CreatePrincipalRequest", "json:", "1e999"} {
			if strings.Contains(msg, goWord) {
				t.Errorf("%s: message %q speaks Go (%q)", tc.body, msg, goWord)
			}
		}
	}
}
