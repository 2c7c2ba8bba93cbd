package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/signin"
)

func newMigrateCommand(e *env) *cobra.Command {
	var (
		f             configFlags
		toDB, toBlobs string
	)
	cmd := &cobra.Command{
		Use:   "migrate --to-db postgres://… [--to-blobs s3://…]",
		Short: "Move a single-node installation to PostgreSQL (and S3) for replicas",
		Long: `Copy everything a single-node berth keeps in its data folder (SQLite metadata,
signing keys, the secret pepper, and the blobs of the storage folder) to the
stores replicas share: the PostgreSQL database of --to-db, with the key
encryption key (BERTH_KEY_ENCRYPTION_KEY, key_encryption_key), and the blob
store of --to-blobs (an s3:// URL signed with AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY; without it the blobs stay in the data folder).

Stop berth serve first: what it changes during the copy may be missed.

Every blob is read back and hashed on its way; one whose bytes do not match its
digest is refused, named, and makes the command fail after copying the rest.
Secrets, refresh tokens and tokens signed before the move keep working on the
target. The audit log is verified, then appended to the target in order: its
events keep their content and times and are chained anew, so "berth audit
verify --db …" passes there (their sequence numbers and hashes are the
target's).

It is safe to run again after an interruption or a failure: what the target
already holds is skipped, nothing is copied twice. Uploads in progress are not
moved; clients start them again. Progress goes to stderr.`,
		Example: `  export BERTH_KEY_ENCRYPTION_KEY=$(openssl rand -base64 32) AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
  berth migrate --data /srv/berth --to-db postgres://berth@db/berth --to-blobs 's3://berth?region=eu-west-1'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			return runMigrate(cmd.Context(), cfg, toDB, toBlobs, e, migrateHooks{})
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&toDB, "to-db", "", "the PostgreSQL database to copy the metadata to: postgres://USER@HOST/DB")
	cmd.Flags().StringVar(&toBlobs, "to-blobs", "", "the blob store to copy the blobs to: s3://BUCKET?endpoint=…&region=… (default: leave them in the data folder)")
	return cmd
}

// migrateHooks let tests interrupt a migration at a chosen point.
type migrateHooks struct {
	// afterBlob, when set, is called after each blob copied, with their count.
	afterBlob func(copied int)
}

// runMigrate copies the single-node installation of cfg.Data to the stores
// toDB and toBlobs name.
func runMigrate(ctx context.Context, cfg Config, toDB, toBlobs string, e *env, hooks migrateHooks) error {
	if cfg.Postgres() || cfg.Blobs != "" {
		refusal := berth.Errorf(berth.CodeInvalid, "berth migrate reads a data folder (SQLite and its storage folder), not --db or --blobs").
			WithHint("name the source with --data DIR and the target with --to-db and --to-blobs")
		// A replica's environment (a Kubernetes secret, say) sets them
		// without a flag: name what set them.
		var set []string
		for _, v := range []string{"BERTH_DB", "BERTH_BLOBS"} {
			if e.getenv(v) != "" {
				set = append(set, v)
			}
		}
		if len(set) > 0 {
			refusal.Message += fmt.Sprintf("; %s is set in the environment", strings.Join(set, " and "))
			refusal.Hint = fmt.Sprintf("unset %s, then name the source with --data DIR and the target with --to-db and --to-blobs", strings.Join(set, " "))
		}
		return refusal
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, metadataFile)); err != nil {
		return berth.Errorf(berth.CodeNotFound, "%s holds no berth metadata (%s): it is not the data folder of a berth server", cfg.Data, metadataFile).
			WithHint("name the folder berth serve uses: --data DIR, or BERTH_DATA")
	}
	dstCfg := cfg
	dstCfg.DB, dstCfg.Blobs = toDB, toBlobs
	if !dstCfg.Postgres() {
		return berth.Errorf(berth.CodeInvalid, "--to-db is not a postgres:// URL").
			WithHint("berth migrate --to-db postgres://USER@HOST:5432/DATABASE --to-blobs s3://BUCKET?…")
	}
	if err := dstCfg.validate(); err != nil {
		return err
	}
	logger := newLogger(cfg.Log, e.stderr)
	src, err := openServed(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.openBlobs(ctx, cfg, e.getenv); err != nil {
		return err
	}
	dst, err := openServed(ctx, dstCfg, logger)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := dst.openBlobs(ctx, dstCfg, e.getenv); err != nil {
		return err
	}
	m := &migration{src: src, dst: dst, data: cfg.Data, w: e.stderr, hooks: hooks}
	fmt.Fprintf(e.stderr, "migrate: from %s (SQLite, blobs on disk) to %s, blobs %s\n", cfg.Data, RedactDSN(toDB), describeBlobs(toBlobs))
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"secret pepper", m.pepper},
		{"signing keys", m.keys},
	}
	if toBlobs != "" {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"blobs", m.blobs})
	}
	steps = append(steps, []struct {
		name string
		fn   func(context.Context) error
	}{
		{"principals, secrets and refresh tokens", m.identities},
		{"role assignments", m.roles},
		{"pipelines", m.pipelines},
		{"connections", m.connections},
		{"webhooks", m.webhooks},
		{"upstreams", m.upstreams},
		{"repositories", m.repositories},
		{"lifecycle rules", m.lifecycle},
		{"people", m.people},
		{"audit log", m.audit},
	}...)
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("migrate %s: %w", s.name, err)
		}
	}
	if len(m.refused) > 0 {
		return berth.Errorf(berth.CodeDigestInvalid, "%d blob(s) were refused because their bytes do not match their digest: %v", len(m.refused), m.refused).
			WithHint("everything else was copied; restore those blobs from a backup into %s and run berth migrate again, or delete the images that use them", filepath.Join(cfg.Data, "storage"))
	}
	fmt.Fprintf(e.stderr, "migrate: done; start the replicas with --db %s%s and the same key encryption key (BERTH_KEY_ENCRYPTION_KEY)\n",
		berth.ShellQuote(RedactDSN(toDB)), map[bool]string{true: " --blobs " + berth.ShellQuote(describeBlobs(toBlobs))}[toBlobs != ""])
	return nil
}

// migration copies one installation; counts say what it did.
type migration struct {
	src, dst *served
	data     string
	w        io.Writer
	hooks    migrateHooks
	refused  []berth.Digest
}

// report prints one aggregate's counts.
func (m *migration) report(what string, copied, present int) {
	fmt.Fprintf(m.w, "migrate: %s: %d copied, %d already there\n", what, copied, present)
}

// pepper seeds the target with the data folder's secret pepper, so that the
// hashes of the secrets copied verify there. A target that has another one
// already (a replica started on it before the move) is refused.
func (m *migration) pepper(ctx context.Context) error {
	seed, err := os.ReadFile(filepath.Join(m.data, pepperFile))
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(m.w, "migrate: the data folder has no secret pepper (it never served): nothing to copy")
		return nil
	}
	if err != nil {
		return err
	}
	got, err := m.dst.replica.Pepper(ctx, seed)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, seed) {
		return berth.Errorf(berth.CodeConflict, "the target database already has a secret pepper other than the data folder's: the secrets copied would not verify there").
			WithHint("migrate into a database no berth has served from (a new database or schema)")
	}
	fmt.Fprintln(m.w, "migrate: secret pepper: in the target, sealed")
	return nil
}

// keys copies the signing keys, sealed with the key encryption key, so that
// the tokens they signed verify on the target.
func (m *migration) keys(ctx context.Context) error {
	srcKeys, err := oauth.DirKeyStore(filepath.Join(m.data, keysDir)).LoadKeys(ctx)
	if err != nil {
		return err
	}
	lock, err := m.dst.replica.DB.Lock(ctx, "signing-keys")
	if err != nil {
		return err
	}
	defer lock.Release()
	dst := oauth.SealedKeyStore{Store: m.dst.replica.DB.Keys(), Sealer: m.dst.replica.Sealer}
	have, err := dst.LoadKeys(ctx)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, k := range have {
		present[k.ID] = true
	}
	copied := 0
	for _, k := range srcKeys {
		if present[k.ID] {
			continue
		}
		if err := dst.SaveKey(ctx, k); err != nil {
			return err
		}
		copied++
	}
	m.report("signing keys", copied, len(srcKeys)-copied)
	return nil
}

// blobs copies every blob of the storage folder the target does not hold,
// verifying each digest as it is written (BlobStore.Put); a mismatch is
// refused and remembered.
func (m *migration) blobs(ctx context.Context) error {
	var all []berth.BlobInfo
	var total int64
	if err := m.src.blobs.Walk(ctx, func(bi berth.BlobInfo) error {
		all = append(all, bi)
		total += bi.Size
		return nil
	}); err != nil {
		return err
	}
	var copied, present int
	var done int64
	last := time.Now()
	progress := func(final bool) {
		if now := time.Now(); final || now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(m.w, "migrate: blobs %d/%d (%d copied, %d already there, %d refused), %s of %s\n",
				copied+present+len(m.refused), len(all), copied, present, len(m.refused), berth.FormatBytes(done), berth.FormatBytes(total))
		}
	}
	for _, bi := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := m.dst.blobs.Stat(ctx, bi.Digest); err == nil {
			present++
			done += bi.Size
			progress(false)
			continue
		} else if !berth.IsCode(err, berth.CodeBlobUnknown) {
			return err
		}
		if err := m.copyBlob(ctx, bi); berth.IsCode(err, berth.CodeDigestInvalid) || berth.IsCode(err, berth.CodeSizeInvalid) {
			fmt.Fprintf(m.w, "migrate: blob %s refused: its bytes do not match its digest\n", bi.Digest)
			m.refused = append(m.refused, bi.Digest)
			continue
		} else if err != nil {
			return err
		}
		copied++
		done += bi.Size
		progress(false)
		if m.hooks.afterBlob != nil {
			m.hooks.afterBlob(copied)
		}
	}
	progress(true)
	return nil
}

func (m *migration) copyBlob(ctx context.Context, bi berth.BlobInfo) error {
	rc, info, err := m.src.blobs.Open(ctx, bi.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = m.dst.blobs.Put(ctx, bi.Digest, info.Size, rc)
	return err
}

// created runs create and tells whether it created (false: conflict, it was
// there already).
func created(err error) (bool, error) {
	if berth.IsCode(err, berth.CodeConflict) {
		return false, nil
	}
	return err == nil, err
}

// identities copies principals, their secrets (tombstones included, with
// hash, last use and revocation) and their refresh tokens.
func (m *migration) identities(ctx context.Context) error {
	ps, err := m.src.meta.FindPrincipals(ctx, berth.PrincipalFilter{})
	if err != nil {
		return err
	}
	var n, sn, tn [2]int // copied, present
	for _, p := range ps {
		ok, err := created(m.dst.meta.CreatePrincipal(ctx, p))
		if err != nil {
			return err
		}
		if !ok { // the same principal, or another of the same name or client id?
			got, err := m.dst.meta.FindPrincipalByID(ctx, p.ID)
			if err != nil || got.Name != p.Name || got.ClientID != p.ClientID {
				return berth.Errorf(berth.CodeConflict, "the target already has another principal named %s or with its client id", p.Name).
					WithHint("migrate into a database no berth has served from (a new database or schema)")
			}
		}
		n[b2i(!ok)]++
		secrets, err := m.src.meta.FindSecrets(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			ok, err := created(m.dst.meta.CreateSecret(ctx, s))
			if err != nil {
				return err
			}
			sn[b2i(!ok)]++
		}
		tokens, err := m.src.meta.FindRefreshTokens(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			ok, err := created(m.dst.meta.CreateRefreshToken(ctx, t))
			if err != nil {
				return err
			}
			tn[b2i(!ok)]++
		}
	}
	m.report("principals", n[0], n[1])
	m.report("secrets (tombstones included)", sn[0], sn[1])
	m.report("refresh tokens", tn[0], tn[1])
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m *migration) roles(ctx context.Context) error {
	as, err := m.src.meta.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{})
	if err != nil {
		return err
	}
	var n [2]int
	for _, a := range as {
		ok, err := created(m.dst.meta.CreateRoleAssignment(ctx, a))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
	}
	m.report("role assignments", n[0], n[1])
	return nil
}

func (m *migration) pipelines(ctx context.Context) error {
	ps, err := m.src.meta.FindPipelines(ctx, berth.PipelineFilter{})
	if err != nil {
		return err
	}
	var n [2]int
	for _, p := range ps {
		ok, err := created(m.dst.meta.CreatePipeline(ctx, p))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
	}
	m.report("pipelines", n[0], n[1])
	return nil
}

// connections copies connections with their permitted pipelines, and the
// requests of pipelines not permitted, with their counts.
func (m *migration) connections(ctx context.Context) error {
	cs, err := m.src.meta.FindConnections(ctx, berth.ConnectionFilter{})
	if err != nil {
		return err
	}
	var n, rn [2]int
	for _, c := range cs {
		ok, err := created(m.dst.meta.CreateConnection(ctx, c))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
		reqs, err := m.src.meta.FindPermissionRequests(ctx, c.ID)
		if err != nil {
			return err
		}
		have, err := m.dst.meta.FindPermissionRequests(ctx, c.ID)
		if err != nil {
			return err
		}
		count := map[string]int{}
		for _, r := range have {
			count[r.PipelineID] = r.Count
		}
		for _, r := range reqs {
			// RecordPermissionRequest counts one request a call: the first
			// records First, the others bring the count and Last.
			if count[r.PipelineID] >= r.Count {
				rn[1]++
				continue
			}
			for i := count[r.PipelineID]; i < r.Count; i++ {
				rec := r
				if i == 0 {
					rec.Last = r.First
				}
				if err := m.dst.meta.RecordPermissionRequest(ctx, rec); err != nil {
					return err
				}
			}
			rn[0]++
		}
	}
	m.report("connections", n[0], n[1])
	m.report("permission requests", rn[0], rn[1])
	return nil
}

// webhooks copies webhooks, their secrets, and their deliveries, pending
// and done, oldest first so that their order holds.
func (m *migration) webhooks(ctx context.Context) error {
	hs, err := m.src.meta.FindWebhooks(ctx)
	if err != nil {
		return err
	}
	var n, dn [2]int
	for _, h := range hs {
		ok, err := created(m.dst.meta.CreateWebhook(ctx, h))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
		ds, err := m.src.meta.FindDeliveries(ctx, h.ID, 0)
		if err != nil {
			return err
		}
		for i := len(ds) - 1; i >= 0; i-- { // newest first as found
			_, err := m.dst.meta.EnqueueDeliveries(ctx, "", ds[i:i+1])
			ok, err := created(err)
			if err != nil {
				return err
			}
			dn[b2i(!ok)]++
		}
	}
	m.report("webhooks", n[0], n[1])
	m.report("webhook deliveries", dn[0], dn[1])
	return nil
}

// people copies the identity providers (their client secrets opened with
// the source's sealing key and sealed again with the target's key
// encryption key), the group role assignments, the people's links (with
// their providers' refresh tokens, sealed again) and their personal access
// tokens. Sessions and device logins in progress are not copied: people
// sign in again on the target.
func (m *migration) people(ctx context.Context) error {
	// The source sealed with its data folder's key when it had one, else
	// with the key encryption key it served with.
	var from []*oauth.Sealer
	if _, err := os.Stat(filepath.Join(m.data, sealingKeyFile)); err == nil {
		local, err := (&served{}).peopleSealer(Config{Data: m.data})
		if err != nil {
			return err
		}
		from = append(from, local)
	}
	if m.src.sealer != nil {
		from = append(from, m.src.sealer)
	}
	to := m.dst.sealer
	reseal := func(sealed, aad []byte) ([]byte, error) {
		if len(sealed) == 0 {
			return sealed, nil
		}
		var plain []byte
		err := errors.New("no key")
		for _, f := range from {
			if plain, err = f.Open(sealed, aad); err == nil {
				break
			}
		}
		if err != nil {
			return nil, berth.Errorf(berth.CodeInvalid, "a sealed secret of the source cannot be opened with its sealing key").
				WithHint("check that %s is the key the source served with", filepath.Join(m.data, sealingKeyFile))
		}
		return to.Seal(plain, aad)
	}
	idps, err := m.src.meta.FindIdentityProviders(ctx)
	if err != nil {
		return err
	}
	var n, gn, ln, tn [2]int
	for _, p := range idps {
		if p.SealedSecret, err = reseal(p.SealedSecret, berth.IdPSecretAAD(p.ID)); err != nil {
			return err
		}
		ok, err := created(m.dst.meta.CreateIdentityProvider(ctx, p))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
	}
	gs, err := m.src.meta.FindGroupRoleAssignments(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		ok, err := created(m.dst.meta.CreateGroupRoleAssignment(ctx, g))
		if err != nil {
			return err
		}
		gn[b2i(!ok)]++
	}
	people, err := m.src.meta.FindPrincipals(ctx, berth.PrincipalFilter{Kind: berth.PrincipalUser})
	if err != nil {
		return err
	}
	for _, p := range people {
		l, err := m.src.meta.FindUserLinkByPrincipal(ctx, p.ID)
		if err == nil {
			if l.SealedRefresh, err = reseal(l.SealedRefresh, signin.RefreshAAD(p.ID)); err != nil {
				return err
			}
			ok, err := created(m.dst.meta.CreateUserLink(ctx, l))
			if err != nil {
				return err
			}
			ln[b2i(!ok)]++
		} else if !berth.IsCode(err, berth.CodeNotFound) {
			return err
		}
		ts, err := m.src.meta.FindPATs(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, t := range ts {
			ok, err := created(m.dst.meta.CreatePAT(ctx, t))
			if err != nil {
				return err
			}
			tn[b2i(!ok)]++
		}
	}
	m.report("identity providers", n[0], n[1])
	m.report("group role assignments", gn[0], gn[1])
	m.report("people's links", ln[0], ln[1])
	m.report("personal access tokens", tn[0], tn[1])
	return nil
}

// lifecycle copies the immutable-tag rules, retention rules and quotas, and
// what retention reads of each repository: who pushed each tag when, and
// when each manifest was last pulled. What the target holds already, equal,
// is left as it is.
func (m *migration) lifecycle(ctx context.Context) error {
	var n [2]int
	imm, err := m.src.meta.FindImmutableRules(ctx)
	if err != nil {
		return err
	}
	for _, r := range imm {
		ok, err := created(m.dst.meta.PutImmutableRule(ctx, r))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
	}
	ret, err := m.src.meta.FindRetentionRules(ctx)
	if err != nil {
		return err
	}
	dstRet, err := m.dst.meta.FindRetentionRules(ctx)
	if err != nil {
		return err
	}
	for _, r := range ret {
		if slices.Contains(dstRet, r) {
			n[1]++
			continue
		}
		if err := m.dst.meta.PutRetentionRule(ctx, r); err != nil {
			return err
		}
		n[0]++
	}
	quotas, err := m.src.meta.FindQuotas(ctx)
	if err != nil {
		return err
	}
	dstQuotas, err := m.dst.meta.FindQuotas(ctx)
	if err != nil {
		return err
	}
	for _, q := range quotas {
		if slices.Contains(dstQuotas, q) {
			n[1]++
			continue
		}
		if err := m.dst.meta.PutQuota(ctx, q); err != nil {
			return err
		}
		n[0]++
	}
	m.report("lifecycle rules", n[0], n[1])

	repos, err := m.src.meta.FindRepositories(ctx, "", -1)
	if err != nil {
		return err
	}
	var f [2]int
	for _, repo := range repos {
		images, err := m.src.meta.FindRetentionImages(ctx, repo)
		if err != nil {
			return err
		}
		there, err := m.dst.meta.FindRetentionImages(ctx, repo)
		if err != nil {
			return err
		}
		pulledThere := map[berth.Digest]time.Time{}
		for _, im := range there {
			pulledThere[im.Digest] = im.LastPulled
		}
		var pulls []berth.ManifestPull
		for _, im := range images {
			for _, t := range im.Tags {
				if p, err := m.dst.meta.FindTagPush(ctx, repo, t.Tag); err == nil && p == t {
					f[1]++
					continue
				}
				if err := m.dst.meta.RecordTagPush(ctx, t); err != nil {
					return err
				}
				f[0]++
			}
			if im.LastPulled.IsZero() {
				continue
			}
			if im.LastPulled.Equal(pulledThere[im.Digest]) {
				f[1]++
				continue
			}
			pulls = append(pulls, berth.ManifestPull{Repository: repo, Digest: im.Digest, Time: im.LastPulled})
		}
		if err := m.dst.meta.RecordPulls(ctx, pulls); err != nil {
			return err
		}
		f[0] += len(pulls)
	}
	m.report("tag pushes and pull times", f[0], f[1])
	return nil
}

// upstreams copies the pull-through cache's upstreams, each credential
// unsealed with the source's key and sealed again with the target's key
// encryption key.
func (m *migration) upstreams(ctx context.Context) error {
	src, err := m.src.upstreams(m.data)
	if err != nil {
		return err
	}
	dst, err := m.dst.upstreams(m.data)
	if err != nil {
		return err
	}
	us, err := src.FindUpstreams(ctx)
	if err != nil {
		return err
	}
	var n [2]int
	for _, u := range us {
		ok, err := created(dst.CreateUpstream(ctx, u))
		if err != nil {
			return err
		}
		n[b2i(!ok)]++
	}
	m.report("upstreams", n[0], n[1])
	return nil
}

// repositories copies blob links, then manifests (those a manifest needs
// before it), then tags. Putting a manifest or a link again changes nothing.
func (m *migration) repositories(ctx context.Context) error {
	// Links no manifest references (pushed blobs awaiting a manifest); the
	// referenced ones are copied with their manifests below.
	unref, err := m.src.meta.FindUnreferencedBlobLinks(ctx, time.Now().Add(100*365*24*time.Hour))
	if err != nil {
		return err
	}
	links := 0
	for _, l := range unref {
		if err := m.dst.meta.LinkBlob(ctx, l); err != nil {
			return err
		}
		links++
	}
	repos, err := m.src.meta.FindRepositories(ctx, "", -1)
	if err != nil {
		return err
	}
	var manifests, tags int
	for _, repo := range repos {
		ds, err := m.src.meta.FindManifestDigests(ctx, repo)
		if err != nil {
			return err
		}
		done := map[berth.Digest]bool{}
		var put func(d berth.Digest, depth int) error
		put = func(d berth.Digest, depth int) error {
			if done[d] {
				return nil
			}
			if depth > 64 {
				return fmt.Errorf("manifest %s of %s: references nest deeper than 64", d, repo)
			}
			man, err := m.src.meta.FindManifest(ctx, repo, string(d))
			if err != nil {
				return err
			}
			// A child the source does not hold (a platform of a cached
			// index never pulled, or a child deleted) is not copied; the
			// index is put without it, as the cache stored it.
			childMissing := false
			for _, r := range man.References {
				switch r.Kind {
				case berth.ReferenceManifest:
					// manifest_unknown is put's own look-up of the child:
					// what a child lacks is put's to handle, a level down.
					err := put(r.Digest, depth+1)
					if berth.IsCode(err, berth.CodeManifestUnknown) {
						childMissing = true
						continue
					}
					if err != nil {
						return err
					}
				case berth.ReferenceBlob:
					l, err := m.src.meta.FindBlobLink(ctx, repo, r.Digest)
					if err != nil {
						return fmt.Errorf("manifest %s of %s: %w", d, repo, err)
					}
					if err := m.dst.meta.LinkBlob(ctx, l); err != nil {
						return err
					}
					links++
				}
			}
			putManifest := m.dst.meta.PutManifest
			if childMissing {
				putManifest = m.dst.meta.PutCachedManifest
			}
			if err := putManifest(ctx, man, ""); err != nil {
				return err
			}
			done[d] = true
			manifests++
			return nil
		}
		for _, d := range ds {
			if err := put(d, 0); err != nil {
				return err
			}
		}
		ts, err := m.src.meta.FindTags(ctx, repo, "", -1)
		if err != nil {
			return err
		}
		for _, tag := range ts {
			man, err := m.src.meta.FindManifest(ctx, repo, tag)
			if err != nil {
				return err
			}
			if err := m.dst.meta.PutManifest(ctx, man, tag); err != nil {
				return err
			}
			tags++
		}
	}
	fmt.Fprintf(m.w, "migrate: repositories: %d, with %d manifests, %d tags and %d blob links (put again when already there)\n",
		len(repos), manifests, tags, links)
	return nil
}

// auditBatch is how many events go in one append, one transaction.
const auditBatch = 500

// audit verifies the source's audit log, then appends to the target the
// events it does not hold yet, in order, in batches that each commit whole.
// The target's k-th event is the source's k-th retained one: a re-run
// continues after the last batch that committed.
func (m *migration) audit(ctx context.Context) error {
	var v berth.AuditVerifier
	if err := m.src.meta.AuditChain(ctx, &v); err != nil {
		return berth.Errorf(berth.CodeInvalid, "the audit log of the data folder does not verify, so it is not copied: %v", err).
			WithHint("berth audit verify --data %s says where it breaks; a chained copy would hide it", m.data)
	}
	// How far a previous run got: the target's events, which a fresh
	// target numbers from 1.
	last, err := m.dst.meta.FindAuditEvents(ctx, berth.AuditFilter{Limit: 1, Last: true})
	if err != nil {
		return err
	}
	var have int64
	var tail *berth.AuditEvent
	if len(last) == 1 {
		have, tail = last[0].Seq, &last[0]
	}
	var after, seen int64
	copied := 0
	for {
		evs, err := m.src.meta.FindAuditEvents(ctx, berth.AuditFilter{After: after, Limit: auditBatch})
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].Seq
		var batch []berth.AuditEvent
		for _, ev := range evs {
			seen++
			if seen < have {
				continue
			}
			if seen == have { // the target's last must be this one
				if !sameAuditEvent(*tail, ev) {
					return berth.Errorf(berth.CodeConflict, "the target's audit log holds events that are not the data folder's (its event #%d is not the data folder's #%d)", have, ev.Seq).
						WithHint("migrate into a database no berth has served from (a new database or schema)")
				}
				continue
			}
			ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
			batch = append(batch, ev)
		}
		if len(batch) > 0 {
			if err := m.dst.meta.AppendAuditEvents(ctx, batch); err != nil {
				return err
			}
			copied += len(batch)
			fmt.Fprintf(m.w, "migrate: audit log %d/%d events\n", seen, v.Events())
		}
	}
	if have > seen {
		return berth.Errorf(berth.CodeConflict, "the target's audit log holds %d events, more than the data folder's %d", have, seen).
			WithHint("migrate into a database no berth has served from (a new database or schema)")
	}
	m.report("audit events", copied, int(min(have, seen)))
	return nil
}

// sameAuditEvent tells whether a, on the target, is the copy of b.
func sameAuditEvent(a, b berth.AuditEvent) bool {
	// Stores keep times to the microsecond at least.
	return a.Time.Truncate(time.Microsecond).Equal(b.Time.Truncate(time.Microsecond)) && a.Action == b.Action && a.Actor == b.Actor && a.ActorID == b.ActorID &&
		a.Target == b.Target && a.Result == b.Result && a.Reason == b.Reason && a.RequestID == b.RequestID
}
