package storetest

import (
	"testing"

	"github.com/berth-dev/berth"
)

// exportTests cover what berth migrate reads to copy a store as it is.
var exportTests = []test{
	{"FindManifestDigestsTaggedOrNot", func(t *testing.T, s berth.MetadataStore) {
		ds, err := s.FindManifestDigests(ctx(t), "team/app")
		must(t, err)
		if ds == nil || len(ds) != 0 {
			t.Fatalf("FindManifestDigests of no repository: %v, want an empty slice", ds)
		}
		tagged := pushImage(t, s, "team/app", "one", "v1", at(0), digest("layer"))
		untagged := pushImage(t, s, "team/app", "two", "", at(1), digest("layer"))
		pushImage(t, s, "team/other", "three", "v1", at(2), digest("layer"))
		ds, err = s.FindManifestDigests(ctx(t), "team/app")
		must(t, err)
		if len(ds) != 2 || ds[0] != tagged.Digest || ds[1] != untagged.Digest {
			t.Fatalf("FindManifestDigests: %v, want [%s %s] (oldest first)", ds, tagged.Digest, untagged.Digest)
		}
	}},
	{"FindRefreshTokensOfPrincipal", func(t *testing.T, s berth.MetadataStore) {
		ts, err := s.FindRefreshTokens(ctx(t), "p1")
		must(t, err)
		if ts == nil || len(ts) != 0 {
			t.Fatalf("FindRefreshTokens of none: %v, want an empty slice", ts)
		}
		a := refreshToken("a", "p1", "s1")
		b := refreshToken("b", "p1", "connection:c1")
		b.Created, b.PipelineID, b.Run = at(5), "91000000-0000-4000-8000-000000000001", "run 7"
		revoked := at(9)
		b.Revoked = &revoked
		must(t, s.CreateRefreshToken(ctx(t), b))
		must(t, s.CreateRefreshToken(ctx(t), a))
		must(t, s.CreateRefreshToken(ctx(t), refreshToken("c", "p2", "s2")))
		ts, err = s.FindRefreshTokens(ctx(t), "p1")
		must(t, err)
		if len(ts) != 2 {
			t.Fatalf("FindRefreshTokens: %d tokens, want 2", len(ts))
		}
		wantRefreshToken(t, "first", ts[0], a)
		wantRefreshToken(t, "second", ts[1], b)
	}},
}
