package cli

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strings"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// sealedPrefix marks a webhook secret stored sealed by the key encryption
// key; a value without it was stored in plain text (before a key was
// configured), is read as it is, and is sealed at the next start with a key.
const sealedPrefix = "sealed:v1:"

// sealedWebhooks is a metadata store whose webhook signing secrets are kept
// sealed (AES-256-GCM under the key encryption key, bound to the webhook's
// id), so that a copy of the database alone cannot sign events as berth.
// Everything else passes through.
type sealedWebhooks struct {
	berth.MetadataStore
	sealer *oauth.Sealer
}

// withSealedWebhooks returns meta sealing webhook secrets with sealer, the
// key encryption key's, and meta itself when there is none.
func withSealedWebhooks(meta berth.MetadataStore, sealer *oauth.Sealer) berth.MetadataStore {
	if sealer == nil {
		return meta
	}
	return sealedWebhooks{MetadataStore: meta, sealer: sealer}
}

var _ berth.RepositoryDeleter = sealedWebhooks{}

// DeleteRepository passes through to the store beneath, whose optional
// berth.RepositoryDeleter the embedded interface would hide: without it,
// berth repo delete was unsupported wherever webhook secrets are sealed
// (every PostgreSQL installation).
func (s sealedWebhooks) DeleteRepository(ctx context.Context, repo string) (berth.RepositoryDeletion, error) {
	del, ok := s.MetadataStore.(berth.RepositoryDeleter)
	if !ok {
		return berth.RepositoryDeletion{}, berth.Errorf(berth.CodeUnsupported, "this server's metadata store cannot delete a whole repository").
			WithHint("delete its manifests instead: berth tag list %s, then crane delete HOST/%s@DIGEST for each", repo, repo)
	}
	return del.DeleteRepository(ctx, repo)
}

func webhookAAD(id string) []byte { return []byte("berth webhook secret " + id) }

func (s sealedWebhooks) CreateWebhook(ctx context.Context, w berth.Webhook) error {
	w, err := s.seal(w)
	if err != nil {
		return err
	}
	return s.MetadataStore.CreateWebhook(ctx, w)
}

func (s sealedWebhooks) SetWebhookSecret(ctx context.Context, id string, secret berth.WebhookSecret) error {
	w, err := s.seal(berth.Webhook{ID: id, Secret: secret})
	if err != nil {
		return err
	}
	return s.MetadataStore.SetWebhookSecret(ctx, id, w.Secret)
}

// seal returns w with its secret, when it has one, sealed.
func (s sealedWebhooks) seal(w berth.Webhook) (berth.Webhook, error) {
	if w.Secret.IsZero() {
		return w, nil
	}
	sealed, err := s.sealer.Seal([]byte(w.Secret.Reveal()), webhookAAD(w.ID))
	if err != nil {
		return w, err
	}
	w.Secret = berth.WebhookSecretOf(sealedPrefix + base64.StdEncoding.EncodeToString(sealed))
	return w, nil
}

func (s sealedWebhooks) FindWebhookByID(ctx context.Context, id string) (berth.Webhook, error) {
	w, err := s.MetadataStore.FindWebhookByID(ctx, id)
	if err != nil {
		return w, err
	}
	return s.open(w)
}

func (s sealedWebhooks) FindWebhooks(ctx context.Context) ([]berth.Webhook, error) {
	ws, err := s.MetadataStore.FindWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if ws[i], err = s.open(ws[i]); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// open returns w with its secret unsealed.
func (s sealedWebhooks) open(w berth.Webhook) (berth.Webhook, error) {
	v, ok := strings.CutPrefix(w.Secret.Reveal(), sealedPrefix)
	if !ok {
		return w, nil
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return w, berth.Errorf(berth.CodeInvalid, "the stored secret of webhook %s is damaged", w.ID)
	}
	plain, err := s.sealer.Open(sealed, webhookAAD(w.ID))
	if err != nil {
		return w, err
	}
	w.Secret = berth.WebhookSecretOf(string(plain))
	return w, nil
}

// sealPlain seals the webhook secrets stored in plain text, from before a
// key encryption key was configured. The values do not change, so
// receivers go on verifying signatures as before. A secret it cannot seal
// is logged and stays as it is; berth reads it either way.
func (s sealedWebhooks) sealPlain(ctx context.Context, logger *slog.Logger) {
	ws, err := s.MetadataStore.FindWebhooks(ctx)
	if err != nil {
		logger.Warn("look for webhook secrets stored in plain text", slog.Any("err", err))
		return
	}
	for _, w := range ws {
		if w.Secret.IsZero() || strings.HasPrefix(w.Secret.Reveal(), sealedPrefix) {
			continue
		}
		if err := s.SetWebhookSecret(ctx, w.ID, w.Secret); err != nil {
			logger.Warn("a webhook's signing secret is stored in plain text, from before the key encryption key was set, and sealing it failed; berth tries again at the next start",
				slog.String("webhook", w.ID), slog.Any("err", err))
			continue
		}
		logger.Info("sealed a webhook's signing secret stored in plain text before the key encryption key was set", slog.String("webhook", w.ID))
	}
}
