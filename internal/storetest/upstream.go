package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// upstreamStore is what the pull-through cache keeps (api.UpstreamStore);
// every metadata store must be one.
type upstreamStore interface {
	CreateUpstream(ctx context.Context, u berth.Upstream) error
	FindUpstream(ctx context.Context, name string) (berth.Upstream, error)
	FindUpstreams(ctx context.Context) ([]berth.Upstream, error)
	DeleteUpstream(ctx context.Context, name string) error
}

var upstreamTests = []test{
	{"CreateFindDelete", func(t *testing.T, s berth.MetadataStore) {
		st, ok := s.(upstreamStore)
		if !ok {
			t.Fatalf("%T does not store upstreams", s)
		}
		// An empty list is empty, not nil: the API shows it as [], not null.
		if none, err := st.FindUpstreams(ctx(t)); err != nil || none == nil {
			t.Fatalf("FindUpstreams of a new store = %#v, %v; want an empty list", none, err)
		}
		exp := at(90 * 24 * 3600)
		hub := berth.Upstream{Name: "hub", URL: "https://registry-1.docker.io", Namespace: "hub", Username: "bot",
			Password: berth.UpstreamPasswordOf("sealed:v1:abc"), TagTTL: 90 * time.Minute, MaxSize: 20 << 30, ExpiresAt: &exp, Created: at(0)}
		ghcr := berth.Upstream{Name: "ghcr", URL: "https://ghcr.io", Namespace: "ghcr", TagTTL: time.Hour, Created: at(1)}
		must(t, st.CreateUpstream(ctx(t), hub))
		must(t, st.CreateUpstream(ctx(t), ghcr))

		got, err := st.FindUpstream(ctx(t), "hub")
		must(t, err)
		if got.Name != "hub" || got.URL != hub.URL || got.Namespace != "hub" || got.Username != "bot" || got.Password.Reveal() != "sealed:v1:abc" ||
			got.TagTTL != 90*time.Minute || got.MaxSize != 20<<30 || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || !got.Created.Equal(at(0)) {
			t.Errorf("FindUpstream(hub) = %#v", got)
		}
		anon, err := st.FindUpstream(ctx(t), "ghcr")
		must(t, err)
		if anon.ExpiresAt != nil || !anon.Password.IsZero() || anon.Username != "" {
			t.Errorf("FindUpstream(ghcr) = %#v, want no credential and no expiry", anon)
		}
		all, err := st.FindUpstreams(ctx(t))
		must(t, err)
		if len(all) != 2 || all[0].Name != "ghcr" || all[1].Name != "hub" {
			t.Errorf("FindUpstreams = %v, want ghcr, hub", all)
		}

		// A name or a namespace is taken once.
		dupName := ghcr
		dupName.Namespace = "other"
		if err := st.CreateUpstream(ctx(t), dupName); !berth.IsCode(err, berth.CodeConflict) {
			t.Errorf("same name: %v, want conflict", err)
		}
		dupNS := ghcr
		dupNS.Name = "other"
		if err := st.CreateUpstream(ctx(t), dupNS); !berth.IsCode(err, berth.CodeConflict) {
			t.Errorf("same namespace: %v, want conflict", err)
		}

		must(t, st.DeleteUpstream(ctx(t), "hub"))
		if _, err := st.FindUpstream(ctx(t), "hub"); !berth.IsCode(err, berth.CodeNotFound) {
			t.Errorf("FindUpstream after delete: %v, want not_found", err)
		}
		if err := st.DeleteUpstream(ctx(t), "hub"); !berth.IsCode(err, berth.CodeNotFound) {
			t.Errorf("DeleteUpstream twice: %v, want not_found", err)
		}
	}},
}
