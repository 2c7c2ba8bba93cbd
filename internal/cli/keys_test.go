package cli

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/internal/api"
)

func TestKeysRotate(t *testing.T) {
	dir := servedFolder(t)
	list := func(args ...string) []api.Key {
		t.Helper()
		code, stdout, stderr := runCLI(t, nil, append(args, "--data", dir, "-o", "json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var keys []api.Key
		if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
			t.Fatalf("%v: %v: %s", args, err, stdout)
		}
		return keys
	}
	first := list("keys", "list")
	if len(first) != 1 || !first[0].Signing || first[0].RetiredAt != nil || first[0].Algorithm != "ES256" {
		t.Fatalf("a new data folder has one signing ES256 key: %+v", first)
	}
	rotated := list("keys", "rotate")
	if len(rotated) != 2 || rotated[0].ID != first[0].ID || rotated[0].RetiredAt == nil || rotated[0].Signing || !rotated[1].Signing {
		t.Fatalf("after rotate the old key is retired and a new one signs: %+v", rotated)
	}
	if again := list("keys", "list"); len(again) != 2 || again[1].ID != rotated[1].ID {
		t.Fatalf("the rotation did not persist: %+v", again)
	}
}
