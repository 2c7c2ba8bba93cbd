package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/sqlstore"
)

var _ oauth.KeyStore = (*KeyStore)(nil)

// KeyStore keeps the signing keys of the replicas in the signing_keys table.
// It stores what it is given: wrap it in an oauth.SealedKeyStore so that the
// private keys are encrypted before they reach the database. A change is
// announced on ChannelInvalidate with PayloadKeys, so that every replica
// reloads its keyring at once.
type KeyStore struct{ db *DB }

// Keys returns the store of the signing keys.
func (db *DB) Keys() *KeyStore { return &KeyStore{db: db} }

func (s *KeyStore) LoadKeys(ctx context.Context) ([]oauth.StoredKey, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT id, created, retired, sealed FROM signing_keys`)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (oauth.StoredKey, error) {
		var k oauth.StoredKey
		err := r.Scan(&k.ID, &k.Created, &k.Retired, &k.Private)
		k.Created, k.Retired = utc(k.Created), utcPtr(k.Retired)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return keys, nil
}

func (s *KeyStore) SaveKey(ctx context.Context, k oauth.StoredKey) error {
	return sqlstore.InTx(ctx, conn{s.db.pool, s.db.changes}, "save signing key", func(tx sqlstore.Querier) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO signing_keys (id, created, retired, sealed) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET created = excluded.created, retired = excluded.retired, sealed = excluded.sealed`,
			k.ID, k.Created, k.Retired, k.Private); err != nil {
			return fmt.Errorf("save signing key %s: %w", k.ID, err)
		}
		return notifyTx(ctx, tx, PayloadKeys)
	})
}

func (s *KeyStore) DeleteKey(ctx context.Context, id string) error {
	return sqlstore.InTx(ctx, conn{s.db.pool, s.db.changes}, "delete signing key", func(tx sqlstore.Querier) error {
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete signing key %s: %w", id, err)
		}
		return notifyTx(ctx, tx, PayloadKeys)
	})
}

// SharedSecret returns the secret of the installation called name, as
// sealed by create on the first call of any replica: create runs when the
// database holds none, and of replicas racing to create it the first to
// commit wins and every one returns its value. open turns the stored value
// into the secret (it decrypts).
func (db *DB) SharedSecret(ctx context.Context, name string, create func() ([]byte, error), open func([]byte) ([]byte, error)) ([]byte, error) {
	var sealed []byte
	err := db.pool.QueryRow(ctx, `SELECT sealed FROM cluster_secrets WHERE name = $1`, name).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		fresh, cerr := create()
		if cerr != nil {
			return nil, cerr
		}
		err = db.pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO cluster_secrets (name, sealed) VALUES ($1, $2)
				ON CONFLICT (name) DO NOTHING RETURNING sealed)
			SELECT sealed FROM ins UNION ALL SELECT sealed FROM cluster_secrets WHERE name = $1
			LIMIT 1`, name, fresh).Scan(&sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("read the shared %s: %w", name, err)
	}
	return open(sealed)
}

var _ oauth.LimitStore = (*LimitStore)(nil)

// LimitStore keeps the failed-attempt counters of the replicas
// (attempt_limits). A key without failures has no row: a success reads one
// row by its primary key and writes nothing.
type LimitStore struct{ db *DB }

// Limits returns the store of the failed-attempt counters.
func (db *DB) Limits() *LimitStore { return &LimitStore{db: db} }

func (s *LimitStore) FailuresForgivenAt(ctx context.Context, kind, key string) (time.Time, error) {
	var tat time.Time
	err := s.db.pool.QueryRow(ctx, `SELECT tat FROM attempt_limits WHERE kind = $1 AND key = $2`, kind, key).Scan(&tat)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return utc(tat), err
}

func (s *LimitStore) RecordFailure(ctx context.Context, kind, key string, now time.Time, interval, window time.Duration) (time.Time, error) {
	var tat time.Time
	err := s.db.pool.QueryRow(ctx, `
		INSERT INTO attempt_limits AS a (kind, key, tat) VALUES ($1, $2, $3::timestamptz + $4::interval)
		ON CONFLICT (kind, key) DO UPDATE
		SET tat = LEAST(GREATEST(a.tat, $3::timestamptz) + $4::interval, $3::timestamptz + $5::interval)
		RETURNING tat`, kind, key, now, interval, window).Scan(&tat)
	return utc(tat), err
}

func (s *LimitStore) ForgetFailures(ctx context.Context, kind, key string) error {
	_, err := s.db.pool.Exec(ctx, `DELETE FROM attempt_limits WHERE kind = $1 AND key = $2`, kind, key)
	return err
}

// DeleteForgiven removes the counters of keys whose failures were all
// forgiven before now, and returns how many.
func (s *LimitStore) DeleteForgiven(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM attempt_limits WHERE tat < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete forgiven attempt limits: %w", err)
	}
	return tag.RowsAffected(), nil
}
