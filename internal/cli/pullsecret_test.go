package cli

import (
	"encoding/base64"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// TestPullSecretCommand: berth pull-secret prints the Secret in YAML (text
// and -o yaml) or JSON, the summary on stderr, and the secret is listed by
// berth secret list --expiring-within with the pull secret's name; -o yaml
// is refused where a command has no YAML.
func TestPullSecretCommand(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	s.AddPrincipal(t, "ci-puller", apitest.Role{Role: "pull", Scope: "team/*"})
	if code, _, stderr := runCLI(t, env, "connection", "create", "cluster", "--principal", "ci-puller"); code != 0 {
		t.Fatal(stderr)
	}

	host := strings.TrimPrefix(s.URL, "http://")
	for _, format := range []string{"text", "yaml", "json"} {
		code, stdout, stderr := runCLI(t, env, "pull-secret", "berth-"+format, "--connection", "cluster", "--namespace", "apps", "--expires-in", "7d", "-o", format)
		if code != 0 {
			t.Fatalf("-o %s: exit %d, %s", format, code, stderr)
		}
		var m api.KubernetesSecret
		if format == "json" {
			m = decodeJSON[api.KubernetesSecret](t, stdout)
		} else if err := yaml.Unmarshal([]byte(stdout), &m); err != nil {
			t.Fatalf("-o %s printed %q: %v", format, stdout, err)
		}
		if m.Kind != "Secret" || m.Type != "kubernetes.io/dockerconfigjson" || m.Metadata.Name != "berth-"+format || m.Metadata.Namespace != "apps" ||
			m.Metadata.Annotations[api.AnnotationExpiresAt] == "" || m.Metadata.Annotations[api.AnnotationConnection] != "cluster" {
			t.Errorf("-o %s: manifest %+v", format, m)
		}
		cfg, err := base64.StdEncoding.DecodeString(m.Data[".dockerconfigjson"])
		if err != nil || !strings.Contains(string(cfg), `"`+host+`"`) {
			t.Errorf("-o %s: .dockerconfigjson %s, %v", format, cfg, err)
		}
		if !strings.Contains(stderr, "principal ci-puller") || !strings.Contains(stderr, "berth secret remove ci-puller "+m.Metadata.Annotations[api.AnnotationSecretID]) {
			t.Errorf("-o %s: stderr %q", format, stderr)
		}
	}

	code, stdout, _ := runCLI(t, env, "secret", "list", "--expiring-within", "8d")
	if code != 0 || strings.Count(stdout, "Kubernetes pull secret apps/berth-") != 3 || !strings.Contains(stdout, "DESCRIPTION") {
		t.Errorf("secret list --expiring-within 8d:\n%s", stdout)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull-secret", "x"}, "[invalid]"},
		{[]string{"pull-secret", "x", "--principal", "nope"}, "[not_found]"},
		{[]string{"pull-secret", "Bad_Name", "--principal", "ci-puller"}, "[invalid]"},
		{[]string{"principal", "list", "-o", "yaml"}, "[invalid]"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %s", tc.args, code, stderr, tc.want)
		}
	}
}
