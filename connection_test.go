package berth_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestConnectionUsable(t *testing.T) {
	web := berth.Pipeline{ID: "p-web", Name: "web"}
	api := berth.Pipeline{ID: "p-api", Name: "api"}
	base := berth.Connection{ID: "c1", Name: "deploy", PrincipalID: "pr1", Auth: berth.ConnectionFederated,
		Pipelines: []string{web.ID}}
	with := func(change func(*berth.Connection)) berth.Connection {
		c := base
		change(&c)
		return c
	}
	tests := []struct {
		name string
		c    berth.Connection
		p    berth.Pipeline
		code berth.Code // "" for usable
	}{
		{"permitted", base, web, ""},
		{"not permitted", base, api, berth.CodePipelineNotAuthorized},
		{"permits none", with(func(c *berth.Connection) { c.Pipelines = nil }), web, berth.CodePipelineNotAuthorized},
		{"all pipelines", with(func(c *berth.Connection) { c.AllPipelines = true }), api, ""},
		{"all pipelines with an empty list", with(func(c *berth.Connection) { c.AllPipelines, c.Pipelines = true, nil }), web, ""},
		{"disabled", with(func(c *berth.Connection) { c.Disabled = true }), web, berth.CodeConnectionDisabled},
		{"disabled comes first", with(func(c *berth.Connection) { c.Disabled, c.Auth = true, berth.ConnectionSecret }), api, berth.CodeConnectionDisabled},
		{"secret auth", with(func(c *berth.Connection) { c.Auth, c.SecretID = berth.ConnectionSecret, "s1" }), web, berth.CodeInvalid},
		{"secret auth, all pipelines", with(func(c *berth.Connection) { c.Auth, c.AllPipelines = berth.ConnectionSecret, true }), web, berth.CodeInvalid},
	}
	for _, tt := range tests {
		err := tt.c.Usable(tt.p)
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.code != "" && !berth.IsCode(err, tt.code):
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.code)
		case tt.code != "" && berth.AsError(err).Detail["connection"] != tt.c.Name:
			t.Errorf("%s: detail %v does not name the connection", tt.name, berth.AsError(err).Detail)
		}
	}
	err := base.Usable(api)
	if e := berth.AsError(err); e.Detail["pipeline"] != api.Name || e.Hint == "" {
		t.Errorf("pipeline_not_authorized: detail %v, hint %q", e.Detail, e.Hint)
	}
}

func TestConnectionIntentValidate(t *testing.T) {
	read := []string{"pull"}
	tests := []struct {
		name string
		in   berth.ConnectionIntent
		ok   bool
	}{
		{"repository", berth.ConnectionIntent{Repository: "team/app", Actions: read}, true},
		{"namespace", berth.ConnectionIntent{Repository: "team/*", Actions: read}, true},
		{"several actions", berth.ConnectionIntent{Repository: "app", Actions: []string{"pull", "push", "delete"}}, true},
		{"registry", berth.ConnectionIntent{Repository: "registry", Actions: read}, false},
		{"no repository", berth.ConnectionIntent{Repository: "", Actions: read}, false},
		{"upper case", berth.ConnectionIntent{Repository: "Team/App", Actions: read}, false},
		{"star in the middle", berth.ConnectionIntent{Repository: "team/*/app", Actions: read}, false},
		{"no action", berth.ConnectionIntent{Repository: "team/app"}, false},
		{"an unknown action", berth.ConnectionIntent{Repository: "team/app", Actions: []string{"pull", "fly"}}, false},
		{"a berth action is not a Docker action", berth.ConnectionIntent{Repository: "team/app", Actions: []string{string(berth.ActionContentRead)}}, false},
	}
	for _, tt := range tests {
		err := tt.in.Validate()
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.ok && !berth.IsCode(err, berth.CodeInvalid):
			t.Errorf("%s: got %v, want invalid", tt.name, err)
		}
	}
}

func TestNewConnection(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	intents := []berth.ConnectionIntent{{Repository: "team/app", Actions: []string{"push"}}}
	c, err := berth.NewConnection(rand.Reader, "deploy", "pr1", berth.ConnectionFederated, intents, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "deploy" || c.PrincipalID != "pr1" || c.Auth != berth.ConnectionFederated || len(c.Intents) != 1 ||
		c.Disabled || c.AllPipelines || len(c.Pipelines) != 0 || !c.Created.Equal(now) || len(c.ID) != 36 {
		t.Errorf("NewConnection = %+v", c)
	}
	if id, ok := berth.ConnectionIDOf(c.CredentialID()); !ok || id != c.ID {
		t.Errorf("ConnectionIDOf(%q) = %q, %v", c.CredentialID(), id, ok)
	}
	if _, ok := berth.ConnectionIDOf("50000000-0000-4000-8000-000000000001"); ok {
		t.Error("a secret id reads as a connection")
	}

	bad := []struct {
		name    string
		conn    string
		auth    berth.ConnectionAuth
		intents []berth.ConnectionIntent
	}{
		{"bad name", "Deploy", berth.ConnectionFederated, nil},
		{"empty name", "", berth.ConnectionFederated, nil},
		{"unknown auth", "deploy", "password", nil},
		{"no auth", "deploy", "", nil},
		{"bad intent", "deploy", berth.ConnectionSecret, []berth.ConnectionIntent{{Repository: "registry", Actions: []string{"pull"}}}},
	}
	for _, tt := range bad {
		if _, err := berth.NewConnection(rand.Reader, tt.conn, "pr1", tt.auth, tt.intents, now); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%s: got %v, want invalid", tt.name, err)
		}
	}
}

func TestParseConnectionAuth(t *testing.T) {
	for _, s := range []string{"federated", "secret"} {
		if a, err := berth.ParseConnectionAuth(s); err != nil || string(a) != s {
			t.Errorf("ParseConnectionAuth(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "Federated", "oidc"} {
		if _, err := berth.ParseConnectionAuth(s); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParseConnectionAuth(%q) = %v, want invalid", s, err)
		}
	}
}

func TestConnectionUnknown(t *testing.T) {
	for _, name := range []string{"", "deploy"} {
		if err := berth.ConnectionUnknown(name); err.Code != berth.CodeConnectionUnknown || err.Hint == "" {
			t.Errorf("ConnectionUnknown(%q) = %v", name, err)
		}
	}
}
