package oci_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
)

// TestQueryCredentialRefused: a client secret or refresh token in the query
// string is refused with invalid, whatever the endpoint, before
// authentication, and the answer never repeats it.
func TestQueryCredentialRefused(t *testing.T) {
	g := newGuarded(t)
	g.principal("ci-web", "push@team/web")
	secret := g.creds["ci-web"][1]
	refresh := "brr_" + strings.Repeat("Ab3", 12)
	for _, tt := range []struct {
		name, method, path, value string
		header                    http.Header
	}{
		{"secret as password on the version check", "GET", "/v2/?password=", secret, nil},
		{"secret in an unknown parameter", "GET", "/v2/team/web/tags/list?token=", secret, g.basic("ci-web")},
		{"refresh token on a blob", "HEAD", "/v2/team/web/blobs/sha256:" + strings.Repeat("a", 64) + "?x=", refresh, nil},
		{"secret on an upload", "POST", "/v2/team/web/blobs/uploads/?s=", secret, g.basic("ci-web")},
		{"client_secret named, any value", "GET", "/v2/?client_secret=", "hunter2", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := g.do(tt.method, tt.path+url.QueryEscape(tt.value), tt.header, nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
			}
			if tt.method == "HEAD" {
				return
			}
			if got, _ := reason(t, body); got != berth.CodeInvalid {
				t.Fatalf("reason %s, want invalid: %s", got, body)
			}
			if strings.Contains(string(body), tt.value) || len(tt.value) > 16 && strings.Contains(string(body), tt.value[8:]) {
				t.Fatalf("the answer repeats the credential: %s", body)
			}
			if !strings.Contains(string(body), "query string") || !strings.Contains(string(body), "berth login") {
				t.Errorf("the answer does not say why or what to do instead: %s", body)
			}
		})
	}
	// A value that merely starts like a hint, or a digest, is not a credential.
	resp, body := g.do("GET", "/v2/team/web/tags/list?last=brt_ab&n=10", g.basic("ci-web"), nil)
	if resp.StatusCode == http.StatusBadRequest {
		t.Fatalf("a tag name refused as a credential: %s", body)
	}
}
