package storetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/berth-dev/berth"
)

// The PipelineStore tests, as the contract in pipeline.go of package berth
// states it. Where it leaves a choice open, the suite settles it:
//   - FindPipelines returns an empty slice, not an error, when nothing matches;
//   - a pipeline reads back exactly as created: nil Claims and JWKS stay nil,
//     and JWKS keeps its bytes.

const otherIssuer = "https://gitlab.example.com"

// pipelineN returns a GitHub Actions pipeline whose ID is made from n.
func pipelineN(n int, name string, created int) berth.Pipeline {
	return berth.Pipeline{
		ID:      fmt.Sprintf("91000000-0000-4000-8000-%012d", n),
		Name:    name,
		Issuer:  berth.GitHubActionsIssuer,
		Subject: fmt.Sprintf("repo:org/%s:ref:refs/heads/main", name),
		Preset:  berth.PresetGitHub,
		Created: at(created),
	}
}

func createPipeline(t *testing.T, s berth.MetadataStore, p berth.Pipeline) berth.Pipeline {
	t.Helper()
	must(t, s.CreatePipeline(ctx(t), p))
	return p
}

func wantPipeline(t *testing.T, what string, got, want berth.Pipeline) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Issuer != want.Issuer || got.Subject != want.Subject ||
		got.Audience != want.Audience || got.Preset != want.Preset || !maps.Equal(got.Claims, want.Claims) ||
		(got.Claims == nil) != (want.Claims == nil) || string(got.JWKS) != string(want.JWKS) ||
		(got.JWKS == nil) != (want.JWKS == nil) || !got.Created.Equal(want.Created) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func pipelineNames(t *testing.T, s berth.MetadataStore, f berth.PipelineFilter) []string {
	t.Helper()
	ps, err := s.FindPipelines(ctx(t), f)
	must(t, err)
	if ps == nil {
		t.Fatalf("FindPipelines(%+v) returned nil, want an empty slice", f)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

var pipelineTests = []test{
	{"CreateAndFind", func(t *testing.T, s berth.MetadataStore) {
		plain := createPipeline(t, s, pipelineN(1, "web", 0))
		full := pipelineN(2, "deploy", 10)
		full.Audience = "registry.example.com"
		full.Claims = map[string]string{"ref_protected": "true", "environment": "prod*", "quoted": "é \"x\""}
		full.JWKS = json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
		full.Preset = ""
		createPipeline(t, s, full)

		for _, want := range []berth.Pipeline{plain, full} {
			got, err := s.FindPipelineByID(ctx(t), want.ID)
			must(t, err)
			wantPipeline(t, "FindPipelineByID "+want.Name, got, want)
			got, err = s.FindPipelineByName(ctx(t), want.Name)
			must(t, err)
			wantPipeline(t, "FindPipelineByName "+want.Name, got, want)
		}
		_, err := s.FindPipelineByID(ctx(t), pipelineN(9, "x", 0).ID)
		wantCode(t, "FindPipelineByID of an unknown id", err, berth.CodeNotFound)
		_, err = s.FindPipelineByName(ctx(t), "nothing")
		wantCode(t, "FindPipelineByName of an unknown name", err, berth.CodeNotFound)
	}},
	{"FindPipelines", func(t *testing.T, s berth.MetadataStore) {
		wantStrings(t, "no pipelines", pipelineNames(t, s, berth.PipelineFilter{}), nil)
		for i, name := range []string{"web", "api", "deploy", "0ps", "db"} {
			p := pipelineN(i+1, name, i)
			if name == "deploy" || name == "db" {
				p.Issuer = otherIssuer
			}
			createPipeline(t, s, p)
		}
		wantStrings(t, "all, by name", pipelineNames(t, s, berth.PipelineFilter{}), []string{"0ps", "api", "db", "deploy", "web"})
		wantStrings(t, "by issuer", pipelineNames(t, s, berth.PipelineFilter{Issuer: otherIssuer}), []string{"db", "deploy"})
		wantStrings(t, "by the other issuer", pipelineNames(t, s, berth.PipelineFilter{Issuer: berth.GitHubActionsIssuer}), []string{"0ps", "api", "web"})
		wantStrings(t, "by an unknown issuer", pipelineNames(t, s, berth.PipelineFilter{Issuer: "https://nowhere.example"}), nil)
	}},
	{"UpdateKeys", func(t *testing.T, s berth.MetadataStore) {
		p := createPipeline(t, s, pipelineN(1, "apps", 0))
		keys := json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
		must(t, s.UpdatePipelineKeys(ctx(t), p.ID, keys))
		want := p
		want.JWKS = keys
		got, err := s.FindPipelineByID(ctx(t), p.ID)
		must(t, err)
		wantPipeline(t, "after pinning keys", got, want)
		must(t, s.UpdatePipelineKeys(ctx(t), p.ID, nil))
		got, err = s.FindPipelineByID(ctx(t), p.ID)
		must(t, err)
		wantPipeline(t, "after unpinning them", got, p)
		wantCode(t, "UpdatePipelineKeys of an unknown id", s.UpdatePipelineKeys(ctx(t), pipelineN(9, "x", 0).ID, keys), berth.CodeNotFound)
	}},
	{"DuplicateIsConflict", func(t *testing.T, s berth.MetadataStore) {
		first := createPipeline(t, s, pipelineN(1, "web", 0))
		sameName := pipelineN(2, "web", 5)
		wantCode(t, "CreatePipeline with an existing name", s.CreatePipeline(ctx(t), sameName), berth.CodeConflict)
		sameID := pipelineN(1, "api", 5)
		wantCode(t, "CreatePipeline with an existing id", s.CreatePipeline(ctx(t), sameID), berth.CodeConflict)
		wantStrings(t, "pipelines after the refused creates", pipelineNames(t, s, berth.PipelineFilter{}), []string{"web"})
		got, err := s.FindPipelineByName(ctx(t), "web")
		must(t, err)
		wantPipeline(t, "the first pipeline", got, first)
		_, err = s.FindPipelineByID(ctx(t), sameName.ID)
		wantCode(t, "the refused pipeline's id", err, berth.CodeNotFound)
	}},
	{"DeleteRemovesPermissionsAndRequests", func(t *testing.T, s berth.MetadataStore) {
		p := createPrincipal(t, s, principalN(1, "ci-web", 0))
		web := createPipeline(t, s, pipelineN(1, "web", 0))
		api := createPipeline(t, s, pipelineN(2, "api", 0))
		db := createPipeline(t, s, pipelineN(3, "db", 0))
		c1 := connectionN(1, "deploy", p, 0)
		c1.Pipelines = []string{web.ID, api.ID}
		createConnection(t, s, c1)
		c2 := createConnection(t, s, connectionN(2, "build", p, 0))
		must(t, s.PermitPipeline(ctx(t), c2.ID, web.ID))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c1.ID, PipelineID: db.ID, Last: at(10)}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c2.ID, PipelineID: db.ID, Last: at(11)}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c2.ID, PipelineID: api.ID, Last: at(12)}))

		must(t, s.DeletePipeline(ctx(t), web.ID))
		_, err := s.FindPipelineByID(ctx(t), web.ID)
		wantCode(t, "FindPipelineByID after delete", err, berth.CodeNotFound)
		wantStrings(t, "permitted on deploy", findConnection(t, s, c1.ID).Pipelines, []string{api.ID})
		wantStrings(t, "permitted on build", findConnection(t, s, c2.ID).Pipelines, nil)

		must(t, s.DeletePipeline(ctx(t), db.ID))
		wantStrings(t, "requests on deploy", requestPipelines(t, s, c1.ID), nil)
		wantStrings(t, "requests on build", requestPipelines(t, s, c2.ID), []string{api.ID})
		wantStrings(t, "pipelines", pipelineNames(t, s, berth.PipelineFilter{}), []string{"api"})

		wantCode(t, "DeletePipeline twice", s.DeletePipeline(ctx(t), web.ID), berth.CodeNotFound)
		// The name and id are free again.
		createPipeline(t, s, pipelineN(1, "web", 20))
		wantStrings(t, "a new pipeline of the same id is not permitted", findConnection(t, s, c2.ID).Pipelines, nil)
	}},
}
