package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/oauth"
)

// Files of the identity provider in the data folder.
const (
	pepperFile       = "secret-pepper"
	keysDir          = "keys"
	initialAdminFile = "initial-admin.json"
)

// loadPepper reads the secret-hashing key of the data folder, creating it on
// first start. Losing it makes every client secret unusable.
func loadPepper(data string) (*berth.SecretHasher, error) {
	path := filepath.Join(data, pepperFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err := atomicfile.Write(path, b); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return berth.NewSecretHasher(b)
}

// loadKeyring opens the signing keys of the data folder for cfg.
func loadKeyring(cfg Config, issuer string) (*oauth.Keyring, error) {
	kr, err := oauth.LoadKeyring(filepath.Join(cfg.Data, keysDir), time.Now(), rand.Reader)
	if err != nil {
		return nil, err
	}
	configureKeyring(kr, cfg, issuer)
	return kr, nil
}

// configureKeyring sets what cfg says of the tokens kr signs: their issuer,
// audience and longest lifetime (which decides when a retired key goes).
func configureKeyring(kr *oauth.Keyring, cfg Config, issuer string) {
	kr.Issuer = issuer
	kr.Audience = cfg.Auth.Service
	kr.MaxTokenLifetime = max(oauth.DefaultMaxTokenLifetime, cfg.Auth.TokenLifetime)
}

// bootstrap creates the anonymous principal when missing and, on a first start,
// the admin with owner on the registry, whose credentials it writes to
// DATA/initial-admin.json (mode 0600) before they exist in the store. It
// returns that file's path and when the admin's secret expires, or "" when
// this was not a first start.
func bootstrap(ctx context.Context, meta berth.MetadataStore, h *berth.SecretHasher, data string) (string, time.Time, error) {
	now := time.Now()
	if err := berth.EnsureAnonymous(ctx, meta, rand.Reader, now); err != nil {
		return "", time.Time{}, err
	}
	first, err := berth.NeedsBootstrap(ctx, meta)
	if err != nil || !first {
		return "", time.Time{}, err
	}
	plan, err := berth.PlanBootstrap(rand.Reader, h, now)
	if err != nil {
		return "", time.Time{}, err
	}
	// The secret expires like any other: the file says when, so that
	// whoever reads it knows to make a lasting owner before then.
	b, err := json.MarshalIndent(map[string]string{
		"client_id":     plan.Admin.ClientID,
		"client_secret": plan.Value.Reveal(),
		"expires_at":    plan.Secret.Expires.UTC().Format(time.RFC3339),
		"note": fmt.Sprintf("this secret of principal %s expires on %s; before then, give the registry a lasting owner "+
			"(berth secret add %s --expires-in 90d, or berth role assign --role owner --scope registry --principal NAME); "+
			"if every owner's secret has lapsed, berth admin recover --data DIR restores one",
			berth.AdminName, plan.Secret.Expires.UTC().Format("2006-01-02"), berth.AdminName),
	}, "", "  ")
	if err != nil {
		return "", time.Time{}, err
	}
	// On PostgreSQL and S3 nothing else needs the data folder: make it here.
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", time.Time{}, fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(data, initialAdminFile)
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return "", time.Time{}, err
	}
	if err := plan.Apply(ctx, meta); err != nil {
		return "", time.Time{}, err
	}
	return path, plan.Secret.Expires, nil
}
