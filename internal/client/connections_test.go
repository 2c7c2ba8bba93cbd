package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/client"
)

func TestClientConnections(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	c := client.New(s.URL, s.Admin.ClientID, s.AdminSecret, nil)
	s.AddPrincipal(t, "ci", apitest.Role{Role: "push", Scope: "team/*"})

	p, err := c.CreatePipeline(ctx, api.CreatePipelineRequest{Name: "gh", Preset: berth.PresetGitHub, Spec: "org/app"})
	if err != nil || p.Subject != "repo:org/app:*" {
		t.Fatalf("CreatePipeline: %+v, %v", p, err)
	}
	_, err = c.CreatePipeline(ctx, api.CreatePipelineRequest{Name: "bad", Issuer: "http://ci.example.com", Subject: "x"})
	wantCode(t, "CreatePipeline over http", err, berth.CodeInvalid)
	if ps, err := c.ListPipelines(ctx); err != nil || len(ps) != 1 {
		t.Errorf("ListPipelines: %+v, %v", ps, err)
	}

	web, err := c.CreateConnection(ctx, api.CreateConnectionRequest{Name: "web", Principal: "ci",
		Intents: []api.IntentRequest{{Repository: "team/web", Actions: []string{"push"}}}})
	if err != nil || web.Principal != "ci" || web.Auth != berth.ConnectionFederated {
		t.Fatalf("CreateConnection: %+v, %v", web, err)
	}
	if ch, err := c.AuthorizeConnection(ctx, "web", "gh", false); err != nil || len(ch.Pipelines) != 1 || ch.Pipelines[0] != "gh" {
		t.Errorf("AuthorizeConnection: %+v, %v", ch, err)
	}
	if d, err := c.GetPipeline(ctx, "gh"); err != nil || len(d.Connections) != 1 {
		t.Errorf("GetPipeline: %+v, %v", d, err)
	}
	if ch, err := c.UnauthorizeConnection(ctx, "web", "gh", false); err != nil || len(ch.Pipelines) != 0 {
		t.Errorf("UnauthorizeConnection: %+v, %v", ch, err)
	}
	if ch, err := c.AuthorizeConnection(ctx, "web", "", true); err != nil || !ch.AllPipelines {
		t.Errorf("AuthorizeConnection all: %+v, %v", ch, err)
	}
	if ch, err := c.PermitPipeline(ctx, "web", "gh"); err != nil || len(ch.Pipelines) != 1 {
		t.Errorf("PermitPipeline: %+v, %v", ch, err)
	}
	if l, err := c.PermissionRequests(ctx, "web"); err != nil || l.Connection != "web" || len(l.Requests) != 0 {
		t.Errorf("PermissionRequests: %+v, %v", l, err)
	}
	if ch, err := c.DisableConnection(ctx, "web"); err != nil || !ch.Disabled {
		t.Errorf("DisableConnection: %+v, %v", ch, err)
	}
	if ch, err := c.EnableConnection(ctx, "web"); err != nil || ch.Disabled {
		t.Errorf("EnableConnection: %+v, %v", ch, err)
	}
	_, err = c.SaveConnection(ctx, "web", api.RenewRequest{})
	if e := wantCode(t, "SaveConnection federated", err, berth.CodeInvalid); !strings.Contains(e.Message, "federated") {
		t.Errorf("save federated: %v", e)
	}

	conv, err := c.ConvertConnection(ctx, "web", api.ConvertRequest{To: "secret"})
	if err != nil || conv.NewSecret == nil || berth.CheckSecretFormat(conv.NewSecret.Value) != nil {
		t.Fatalf("ConvertConnection: %+v, %v", conv, err)
	}
	saved, err := c.SaveConnection(ctx, "web", api.RenewRequest{Grace: "1d"})
	if err != nil || saved.NewSecret == nil || saved.PreviousSecret == nil || saved.PreviousSecret.ID != conv.NewSecret.ID {
		t.Fatalf("SaveConnection: %+v, %v", saved, err)
	}
	if d, err := c.GetConnection(ctx, "web"); err != nil || d.Secret == nil || d.Secret.ID != saved.NewSecret.ID {
		t.Errorf("GetConnection: %+v, %v", d, err)
	}
	v, err := c.VerifyConnection(ctx, "web")
	if err != nil || !v.OK || len(v.Checks) == 0 {
		t.Errorf("VerifyConnection: %+v, %v", v, err)
	}
	if h, err := c.ConnectionHistory(ctx, "web", "24h", 10); err != nil || h.Connection != "web" {
		t.Errorf("ConnectionHistory: %+v, %v", h, err)
	}
	_, err = c.ConnectionHistory(ctx, "web", "yesterday", 0)
	wantCode(t, "ConnectionHistory since yesterday", err, berth.CodeInvalid)
	if cs, err := c.ListConnections(ctx); err != nil || len(cs) != 1 {
		t.Errorf("ListConnections: %+v, %v", cs, err)
	}
	if d, err := c.DeleteConnection(ctx, "web"); err != nil || !d.SecretRevoked {
		t.Errorf("DeleteConnection: %+v, %v", d, err)
	}
	_, err = c.GetConnection(ctx, "web")
	wantCode(t, "GetConnection after delete", err, berth.CodeNotFound)
	if _, err := c.DeletePipeline(ctx, "gh"); err != nil {
		t.Errorf("DeletePipeline: %v", err)
	}
}
