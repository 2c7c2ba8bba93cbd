package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// TestRepoAndTagCommands: berth repo list|show|delete and berth tag
// list|delete through /api/v1, decided by the roles /v2/ uses, refused by
// immutable-tag rules as the registry's DELETE is, and announced to webhooks
// as image.deleted.
func TestRepoAndTagCommands(t *testing.T) {
	t.Run("plain", func(t *testing.T) { repoAndTagCommands(t, startServe(t, t.TempDir())) })
	// With a key encryption key the metadata store is wrapped to seal
	// webhook secrets, as it always is on PostgreSQL: repo delete must
	// still reach the store's RepositoryDeleter.
	t.Run("sealed", func(t *testing.T) {
		kek := map[string]string{"BERTH_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
		repoAndTagCommands(t, startServeEnv(t, kek, t.TempDir()))
	})
}

func repoAndTagCommands(t *testing.T, s *running) {
	env := adminEnv(t, s)
	deletions := make(chan berth.ImageEventData, 8)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string               `json:"type"`
			Data berth.ImageEventData `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil && ev.Type == "dev.berth.image.deleted" {
			deletions <- ev.Data
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	if code, _, stderr := runCLI(t, env, "webhook", "create", recv.URL, "--events", "image.deleted"); code != 0 {
		t.Fatalf("webhook create: %s", stderr)
	}
	deleted := func(want ...string) {
		t.Helper()
		var got []string
		for len(got) < len(want) {
			select {
			case d := <-deletions:
				got = append(got, d.Repository+":"+d.Tag+"@"+string(d.Digest)[:13]+" by "+d.Actor)
			case <-time.After(10 * time.Second):
				t.Fatalf("image.deleted received %v, want %v", got, want)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("image.deleted received %v, want %v", got, want)
		}
	}
	host := strings.TrimPrefix(s.url, "http://")
	admin := remote.WithAuth(&authn.Basic{Username: env[envClientID], Password: env[envClientSecret]})
	ref := func(r string) name.Reference {
		n, err := name.ParseReference(host+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	rnd := rand.New(rand.NewSource(13))
	var images []v1.Image
	for _, r := range []string{"team/app:v1", "team/app:v2", "team/other:v1"} {
		img, err := random.Image(2048, 2, random.WithSource(rnd))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref(r), img, admin); err != nil {
			t.Fatalf("push %s: %v", r, err)
		}
		images = append(images, img)
	}
	desc, err := remote.Head(ref("team/app:v1"), admin)
	if err != nil {
		t.Fatal(err)
	}
	sbom := mutate.Subject(mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.example.sbom"), types.OCIManifestSchema1), *desc).(v1.Image)
	sbomDigest, _ := sbom.Digest()
	if err := remote.Write(ref("team/app@"+sbomDigest.String()), sbom, admin); err != nil {
		t.Fatal(err)
	}

	run := func(env map[string]string, out any, args ...string) (int, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, append(args, "-o", "json")...)
		if code == 0 && out != nil {
			if err := json.Unmarshal([]byte(stdout), out); err != nil {
				t.Fatalf("berth %v: %v\n%s", args, err, stdout)
			}
		}
		return code, stdout + stderr
	}
	var repos []string
	if code, out := run(env, &repos, "repo", "list"); code != 0 || !slices.Equal(repos, []string{"team/app", "team/other"}) {
		t.Fatalf("repo list: %d %v %s", code, repos, out)
	}
	var detail api.RepositoryDetail
	if code, out := run(env, &detail, "repo", "show", "team/app"); code != 0 {
		t.Fatalf("repo show: %s", out)
	}
	v1Digest, _ := images[0].Digest()
	if len(detail.Tags) != 2 || detail.Tags[0] != (api.Tag{Name: "v1", Digest: v1Digest.String()}) || len(detail.Manifests) != 3 {
		t.Fatalf("repo show team/app: %+v", detail)
	}
	for _, m := range detail.Manifests {
		if m.Digest != v1Digest.String() {
			continue
		}
		size, _ := images[0].Size()
		layers, _ := images[0].Layers()
		for _, l := range layers {
			n, _ := l.Size()
			size += n
		}
		cfg, _ := images[0].RawConfigFile()
		size += int64(len(cfg))
		if m.Size != size || len(m.Referrers) != 1 || m.Referrers[0].Digest.String() != sbomDigest.String() || !slices.Equal(m.Tags, []string{"v1"}) {
			t.Errorf("v1 in repo show: %+v; want size %d, tag v1 and the sbom as referrer", m, size)
		}
	}

	// A principal with pull on team/app only: sees and reads it, may not
	// delete, and team/other is refused as on /v2/.
	for _, args := range [][]string{{"principal", "create", "dev"}, {"role", "assign", "--principal", "dev", "--role", "pull", "--scope", "team/app"}} {
		if code, out := run(env, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, out)
		}
	}
	var sec struct{ Value string }
	if code, out := run(env, &sec, "secret", "add", "dev"); code != 0 {
		t.Fatal(out)
	}
	dev := map[string]string{envURL: s.url, envClientID: "dev", envClientSecret: sec.Value, "HOME": env["HOME"]}
	if code, out := run(dev, &repos, "repo", "list"); code != 0 || !slices.Equal(repos, []string{"team/app"}) {
		t.Errorf("repo list as dev: %d %v %s", code, repos, out)
	}
	var tags api.TagList
	if code, out := run(dev, &tags, "tag", "list", "team/app"); code != 0 || len(tags.Tags) != 2 {
		t.Errorf("tag list as dev: %d %s", code, out)
	}
	for _, args := range [][]string{{"tag", "list", "team/other"}, {"repo", "show", "team/other"}, {"tag", "delete", "team/app:v1"}, {"repo", "delete", "team/app"}} {
		code, out := run(dev, nil, args...)
		if code != 1 || jsonErrorCode(t, strings.SplitN(out, "\n", 2)[0]) != "role_missing" {
			t.Errorf("berth %v as dev: %d %s, want role_missing", args, code, out)
		}
	}

	// An immutable v1 stops the owner too: the tag, and the repository
	// that holds it.
	if code, out := run(env, nil, "immutable", "add", "team/*", "--tags", "v1"); code != 0 {
		t.Fatalf("immutable add: %s", out)
	}
	for _, args := range [][]string{{"tag", "delete", "team/app:v1"}, {"repo", "delete", "team/app"}} {
		code, out := run(env, nil, args...)
		if code != 1 || jsonErrorCode(t, strings.SplitN(out, "\n", 2)[0]) != "tag_immutable" {
			t.Errorf("berth %v with v1 immutable: %d %s, want tag_immutable", args, code, out)
		}
	}
	if code, out := run(env, nil, "immutable", "remove", "team/*", "--tags", "v1"); code != 0 {
		t.Fatalf("immutable remove: %s", out)
	}

	// The owner deletes a tag, then the repository.
	var removed api.Tag
	if code, out := run(env, &removed, "tag", "delete", "team/app:v2"); code != 0 {
		t.Fatalf("tag delete: %s", out)
	}
	v2Digest, _ := images[1].Digest()
	deleted("team/app:v2@" + v2Digest.String()[:13] + " by admin")
	if code, _ := run(env, &tags, "tag", "list", "team/app"); code != 0 || len(tags.Tags) != 1 || tags.Tags[0].Name != "v1" {
		t.Errorf("tags after the delete: %+v", tags)
	}
	var gone api.DeletedRepository
	if code, out := run(env, &gone, "repo", "delete", "team/app"); code != 0 || gone.Manifests != 3 || gone.Tags != 1 {
		t.Fatalf("repo delete: %d %+v %s", code, gone, out)
	}
	deleted("team/app:v1@" + v1Digest.String()[:13] + " by admin")
	if code, _ := run(env, &repos, "repo", "list"); code != 0 || !slices.Equal(repos, []string{"team/other"}) {
		t.Errorf("repo list after the delete: %v", repos)
	}
	if _, err := remote.Head(ref("team/app:v1"), admin); err == nil {
		t.Error("the deleted repository still serves its manifest on /v2/")
	}
}
