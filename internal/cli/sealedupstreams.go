package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oci"
)

// upstreamKeyFile seals upstream credentials in the data folder of a
// SQLite installation that has no key encryption key, so that a copy of
// metadata.db alone never holds them readable.
const upstreamKeyFile = "upstream-key"

// sealedUpstreams keeps the upstream store's passwords sealed (AES-256-GCM,
// bound to the upstream's name) and opens them as they are read.
type sealedUpstreams struct {
	store  api.UpstreamStore
	sealer *oauth.Sealer
}

var (
	_ api.UpstreamStore  = sealedUpstreams{}
	_ oci.UpstreamFinder = sealedUpstreams{}
)

// upstreamSealer returns the sealer of upstream credentials: the key
// encryption key's, else the data folder's own key, created on first use.
func (st *served) upstreamSealer(data string) (*oauth.Sealer, error) {
	if st.sealer != nil {
		return st.sealer, nil
	}
	path := filepath.Join(data, upstreamKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err := disk.WriteFileAtomic(path, key); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return oauth.NewSealer(key, rand.Reader)
}

// upstreams returns the upstream store of st, its passwords sealed.
func (st *served) upstreams(data string) (sealedUpstreams, error) {
	store, ok := st.meta.(api.UpstreamStore)
	if !ok {
		return sealedUpstreams{}, fmt.Errorf("the metadata store %T keeps no upstreams", st.meta)
	}
	sealer, err := st.upstreamSealer(data)
	if err != nil {
		return sealedUpstreams{}, err
	}
	return sealedUpstreams{store: store, sealer: sealer}, nil
}

func upstreamAAD(name string) []byte { return []byte("berth upstream password " + name) }

func (s sealedUpstreams) CreateUpstream(ctx context.Context, u berth.Upstream) error {
	if !u.Password.IsZero() {
		sealed, err := s.sealer.Seal([]byte(u.Password.Reveal()), upstreamAAD(u.Name))
		if err != nil {
			return err
		}
		u.Password = berth.UpstreamPasswordOf(sealedPrefix + base64.StdEncoding.EncodeToString(sealed))
	}
	return s.store.CreateUpstream(ctx, u)
}

func (s sealedUpstreams) FindUpstream(ctx context.Context, name string) (berth.Upstream, error) {
	u, err := s.store.FindUpstream(ctx, name)
	if err != nil {
		return u, err
	}
	return s.open(u)
}

func (s sealedUpstreams) FindUpstreams(ctx context.Context) ([]berth.Upstream, error) {
	us, err := s.store.FindUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	for i := range us {
		if us[i], err = s.open(us[i]); err != nil {
			return nil, err
		}
	}
	return us, nil
}

func (s sealedUpstreams) DeleteUpstream(ctx context.Context, name string) error {
	return s.store.DeleteUpstream(ctx, name)
}

// open returns u with its password unsealed.
func (s sealedUpstreams) open(u berth.Upstream) (berth.Upstream, error) {
	if u.Password.IsZero() {
		return u, nil
	}
	v, ok := strings.CutPrefix(u.Password.Reveal(), sealedPrefix)
	if !ok {
		return u, berth.Errorf(berth.CodeInvalid, "the stored credential of upstream %s is not sealed; berth never stores one so", u.Name).
			WithHint("berth upstream delete %s, then create it again", u.Name)
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return u, berth.Errorf(berth.CodeInvalid, "the stored credential of upstream %s is damaged", u.Name).
			WithHint("berth upstream delete %s, then create it again", u.Name)
	}
	plain, err := s.sealer.Open(sealed, upstreamAAD(u.Name))
	if err != nil {
		return u, err
	}
	u.Password = berth.UpstreamPasswordOf(string(plain))
	return u, nil
}
