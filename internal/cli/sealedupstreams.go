package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oci"
)

// upstreamKeyFile seals upstream credentials in the data folder of a
// SQLite installation that has no key encryption key, so that a copy of
// metadata.db alone never holds them readable.
const upstreamKeyFile = "upstream-key"

// folderSealedPrefix marks a credential sealed with the data folder's
// upstream key rather than the key encryption key (sealedPrefix).
const folderSealedPrefix = "sealed:folder:v1:"

// sealedUpstreams keeps the upstream store's passwords sealed (AES-256-GCM,
// bound to the upstream's name) and opens them as they are read: sealed
// with the key encryption key when one is configured, else with the data
// folder's upstream key; each stored value says which.
type sealedUpstreams struct {
	store  api.UpstreamStore
	kek    *oauth.Sealer // nil without a key encryption key
	folder *oauth.Sealer // nil when the data folder has no upstream key
	// changed, when set, is called after an upstream was created or
	// deleted: the registry's cache drops the upstreams it keeps.
	changed func()
	// logger hears of an upstream whose credential cannot be unsealed.
	logger *slog.Logger
}

var (
	_ api.UpstreamStore  = sealedUpstreams{}
	_ oci.UpstreamFinder = sealedUpstreams{}
)

// folderSealer returns the sealer of the data folder's upstream key,
// creating the key when create is set; nil when there is none.
func folderSealer(data string, create bool) (*oauth.Sealer, error) {
	path := filepath.Join(data, upstreamKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		key = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err := atomicfile.Write(path, key); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return oauth.NewSealer(key, rand.Reader)
}

// upstreams returns the upstream store of st, its passwords sealed: with
// the key encryption key when st has one, else with the data folder's key.
// PostgreSQL always has the key encryption key, which every replica shares.
func (st *served) upstreams(data string) (sealedUpstreams, error) {
	store, ok := st.meta.(api.UpstreamStore)
	if !ok {
		return sealedUpstreams{}, fmt.Errorf("the metadata store %T keeps no upstreams", st.meta)
	}
	s := sealedUpstreams{store: store, kek: st.sealer}
	if st.replica == nil { // the data folder is the installation's
		var err error
		if s.folder, err = folderSealer(data, st.sealer == nil); err != nil {
			return sealedUpstreams{}, err
		}
	}
	return s, nil
}

func upstreamAAD(name string) []byte { return []byte("berth upstream password " + name) }

func (s sealedUpstreams) CreateUpstream(ctx context.Context, u berth.Upstream) error {
	u, err := s.seal(u)
	if err != nil {
		return err
	}
	err = s.store.CreateUpstream(ctx, u)
	if err == nil && s.changed != nil {
		s.changed()
	}
	return err
}

func (s sealedUpstreams) UpdateUpstream(ctx context.Context, u berth.Upstream) error {
	u, err := s.seal(u)
	if err != nil {
		return err
	}
	err = s.store.UpdateUpstream(ctx, u)
	if s.changed != nil {
		s.changed() // even on failure: the store may have changed
	}
	return err
}

// seal returns u with its password sealed: with the key encryption key when
// there is one, else with the data folder's key.
func (s sealedUpstreams) seal(u berth.Upstream) (berth.Upstream, error) {
	if u.Password.IsZero() {
		return u, nil
	}
	sealer, prefix := s.kek, sealedPrefix
	if sealer == nil {
		sealer, prefix = s.folder, folderSealedPrefix
	}
	if sealer == nil {
		return u, berth.Errorf(berth.CodeUnsupported, "this server has no key to seal the credential of upstream %s with", u.Name).
			WithHint("export BERTH_KEY_ENCRYPTION_KEY=$(openssl rand -base64 32) (key_encryption_key in the configuration file), or run berth serve with a data folder, which keeps %s", upstreamKeyFile)
	}
	sealed, err := sealer.Seal([]byte(u.Password.Reveal()), upstreamAAD(u.Name))
	if err != nil {
		return u, err
	}
	u.Password = berth.UpstreamPasswordOf(prefix + base64.StdEncoding.EncodeToString(sealed))
	return u, nil
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
		opened, err := s.open(us[i])
		if err != nil {
			// One upstream's credential must not stop the others: this one
			// stays a (read-only) cache namespace, asked anonymously, and
			// its upstream's refusal names it.
			if s.logger != nil {
				s.logger.Error("the credential of an upstream cannot be unsealed; it is used without one", slog.String("upstream", us[i].Name), slog.Any("err", err))
			}
			opened = us[i]
			opened.Password = berth.UpstreamPassword{}
		}
		us[i] = opened
	}
	return us, nil
}

func (s sealedUpstreams) DeleteUpstream(ctx context.Context, name string) error {
	err := s.store.DeleteUpstream(ctx, name)
	if s.changed != nil {
		s.changed() // even on failure: the store may have changed
	}
	return err
}

// open returns u with its password unsealed.
func (s sealedUpstreams) open(u berth.Upstream) (berth.Upstream, error) {
	if u.Password.IsZero() {
		return u, nil
	}
	sealer := s.kek
	v, ok := strings.CutPrefix(u.Password.Reveal(), sealedPrefix)
	if !ok {
		sealer = s.folder
		v, ok = strings.CutPrefix(u.Password.Reveal(), folderSealedPrefix)
	}
	if ok && sealer == nil {
		return u, berth.Errorf(berth.CodeInvalid, "the credential of upstream %s is sealed with a key this server does not have", u.Name).
			WithHint("set the key encryption key the upstream was created under, or keep %s in the data folder; else give it its credential again: berth upstream update %s --username U --password-stdin", upstreamKeyFile, u.Name)
	}
	if !ok {
		return u, berth.Errorf(berth.CodeInvalid, "the stored credential of upstream %s is not sealed; berth never stores one so", u.Name).
			WithHint("give it its credential again: berth upstream update %s --username U --password-stdin", u.Name)
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return u, berth.Errorf(berth.CodeInvalid, "the stored credential of upstream %s is damaged", u.Name).
			WithHint("give it its credential again: berth upstream update %s --username U --password-stdin", u.Name)
	}
	plain, err := sealer.Open(sealed, upstreamAAD(u.Name))
	if err != nil {
		return u, err
	}
	u.Password = berth.UpstreamPasswordOf(string(plain))
	return u, nil
}
