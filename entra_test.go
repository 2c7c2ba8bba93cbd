package berth_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

const (
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraApp    = "5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a"
	entraObject = "9e1b2c3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
)

func TestEntraPreset(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	p, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "acr-push", Preset: berth.PresetEntra, Spec: entraTenant + "/" + entraApp}, now)
	if err != nil {
		t.Fatal(err)
	}
	upper, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "upper", Preset: berth.PresetEntra, Spec: strings.ToUpper(entraTenant + "/" + entraApp)}, now)
	if err != nil || upper.Claims["tid"] != entraTenant {
		t.Errorf("upper-case GUIDs: %+v, %v", upper, err)
	}
	if p.Issuer != "https://login.microsoftonline.com/"+entraTenant+"/v2.0" || p.Subject != "*" ||
		p.Claims["tid"] != entraTenant || p.Claims["oid|appid|azp|sub"] != entraApp || p.Preset != berth.PresetEntra {
		t.Fatalf("pipeline %+v", p)
	}
	v1, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "v1", Preset: berth.PresetEntra, Spec: entraTenant + "/" + entraApp,
		Issuer: "https://sts.windows.net/" + entraTenant + "/", Claims: map[string]string{"idtyp": "app"}}, now)
	if err != nil || v1.Issuer != "https://sts.windows.net/"+entraTenant+"/" || v1.Claims["idtyp"] != "app" || len(v1.Claims) != 3 {
		t.Fatalf("v1 pipeline %+v, %v", v1, err)
	}
	for _, spec := range []berth.PipelineSpec{
		{Name: "a", Preset: berth.PresetEntra, Spec: entraTenant},
		{Name: "a", Preset: berth.PresetEntra, Spec: "/" + entraApp},
		{Name: "a", Preset: berth.PresetEntra, Spec: entraTenant + "/a b"},
		{Name: "a", Preset: berth.PresetEntra, Spec: "contoso.onmicrosoft.com/" + entraApp},
		{Name: "a", Preset: berth.PresetEntra, Spec: entraTenant + "/" + entraApp, Subject: "x"},
		{Name: "a", Preset: berth.PresetEntra, Spec: entraTenant + "/" + entraApp, Claims: map[string]string{"tid": "other"}},
	} {
		if _, err := berth.NewPipeline(rand.Reader, spec, now); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%+v: %v, want invalid", spec, err)
		}
	}
}

func TestClaimAlternatives(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	p, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "acr-push", Preset: berth.PresetEntra, Spec: entraTenant + "/" + entraApp, Audience: "api://berth"}, now)
	if err != nil {
		t.Fatal(err)
	}
	entra := func(claims map[string]any) berth.Assertion {
		c := map[string]any{"tid": entraTenant, "ver": "2.0"}
		for k, v := range claims {
			c[k] = v
		}
		sub, _ := c["sub"].(string)
		return berth.Assertion{Issuer: p.Issuer, Subject: sub, Audience: []string{"api://berth"}, Claims: c}
	}
	tests := []struct {
		name string
		a    berth.Assertion
		want berth.Code
	}{
		{"by azp (v2.0)", entra(map[string]any{"sub": entraObject, "oid": entraObject, "azp": entraApp}), ""},
		{"by appid (v1.0)", entra(map[string]any{"sub": entraObject, "oid": entraObject, "appid": entraApp}), ""},
		{"by oid", entra(map[string]any{"sub": "x", "oid": entraApp}), ""},
		{"by sub", entra(map[string]any{"sub": entraApp}), ""},
		{"another app", entra(map[string]any{"sub": entraObject, "oid": entraObject, "azp": "11111111-2222-3333-4444-555555555555"}), berth.CodePipelineUnknown},
		{"another tenant", entra(map[string]any{"tid": "00000000-1111-2222-3333-444444444444", "sub": entraApp, "azp": entraApp}), berth.CodePipelineUnknown},
		{"no identity claim", entra(map[string]any{}), berth.CodePipelineUnknown},
	}
	for _, tt := range tests {
		_, err := berth.MatchPipeline([]berth.Pipeline{p}, tt.a, "berth")
		if got := berth.ErrorCode(err); got != tt.want {
			t.Errorf("%s: %v, want code %q", tt.name, err, tt.want)
		}
	}

	// Alternatives are a general form of --claim; sub may be one of them but
	// not a condition alone, and the other reserved claims never.
	for key, ok := range map[string]bool{"oid|appid": true, "sub|oid": true, "sub": false, "iss|oid": false, "oid|": false, "a b|c": false} {
		_, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "c", Issuer: "https://issuer.example", Subject: "*", Claims: map[string]string{key: "x"}}, now)
		if (err == nil) != ok {
			t.Errorf("claim key %q: %v", key, err)
		}
	}
}
