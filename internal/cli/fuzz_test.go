package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDockerConfig: berth login edits the docker configuration, a file
// other programs write too. Whatever it holds, berth either refuses it,
// leaving it as it was, or writes valid JSON naming berth as the host's
// credential helper and keeping every other key (but the host's stale auths
// entry). doctor reads it too.
// Seed corpus in testdata/fuzz; .ci/run runs it for a fixed time.
func FuzzDockerConfig(f *testing.F) {
	for _, s := range []string{
		`{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}},"credsStore":"desktop"}`,
		`{"credHelpers":{"gcr.io":"gcloud"},"experimental":"enabled","proxies":{"default":{"httpProxy":"http://p:3128"}}}`,
		`{"credHelpers":null}`, `{"credHelpers":"berth"}`, `null`, `[]`, `{}`, ``, "\ufeff{}", `{"auths":{"x":{"auth":"!!"}}}`,
	} {
		f.Add([]byte(s))
	}
	// Found by the fuzzer in CI: an entry of the host without a credential
	// stays; two keys naming the host with credentials both go.
	f.Add([]byte(`{"auths":{"registry.example.com":{}}}`))
	f.Add([]byte(`{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"},"https://registry.example.com/v1/":{"auth":"dXNlcjpwYXNz"},"other.example":{}}}`))
	dir := f.TempDir()
	const host = "registry.example.com"
	getenv := func(k string) string {
		if k == "DOCKER_CONFIG" {
			return dir
		}
		return ""
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var d doctorDockerConfig
		if json.Unmarshal(b, &d) == nil {
			for _, a := range d.Auths {
				a.hasCredential()
				a.basic()
			}
		}
		_, _, err := registerHelper(getenv, host)
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(after, b) {
				t.Fatalf("a refused edit changed the file:\n%q\n%q", b, after)
			}
			return
		}
		var now map[string]json.RawMessage
		if err := json.Unmarshal(after, &now); err != nil || now == nil {
			t.Fatalf("berth wrote %q (from %q): %v", after, b, err)
		}
		var helpers map[string]string
		if err := json.Unmarshal(now["credHelpers"], &helpers); err != nil || helpers[host] != helperName {
			t.Fatalf("credHelpers %s", now["credHelpers"])
		}
		var before map[string]json.RawMessage
		if json.Unmarshal(b, &before) == nil {
			// berth login also drops the host's stale auths entries: those
			// that hold a credential, under any key naming the host.
			var auths map[string]json.RawMessage
			if json.Unmarshal(before["auths"], &auths) == nil && auths != nil {
				for k, v := range auths {
					var entry doctorDockerAuth
					if hostKey(k) == host && json.Unmarshal(v, &entry) == nil && entry.hasCredential() {
						delete(auths, k)
					}
				}
				before["auths"], _ = json.Marshal(auths)
			}
			for k, v := range before {
				if k == "credHelpers" || k == "auths" && now[k] == nil && string(v) == "{}" {
					continue
				}
				var x, y any
				if json.Unmarshal(v, &x) != nil || json.Unmarshal(now[k], &y) != nil || !jsonEqual(x, y) {
					t.Fatalf("key %q was %s, is %s", k, v, now[k])
				}
			}
		}
	})
}

func jsonEqual(x, y any) bool {
	a, _ := json.Marshal(x)
	b, _ := json.Marshal(y)
	return bytes.Equal(a, b)
}
