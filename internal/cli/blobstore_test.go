package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/s3test"
)

// The blob store is chosen like the database: file, then BERTH_BLOBS, then
// --blobs; an invalid URL is refused before anything is opened.
func TestConfigBlobs(t *testing.T) {
	path := writeConfig(t, "blobs: s3://from-file?endpoint=127.0.0.1:9000\n")
	cfg, err := loadConfig(configFlags{file: path}, mapEnv(nil))
	if err != nil || cfg.Blobs != "s3://from-file?endpoint=127.0.0.1:9000" {
		t.Fatalf("file: %q, %v", cfg.Blobs, err)
	}
	cfg, err = loadConfig(configFlags{file: path}, mapEnv(map[string]string{"BERTH_BLOBS": "s3://from-env"}))
	if err != nil || cfg.Blobs != "s3://from-env" {
		t.Fatalf("env: %q, %v", cfg.Blobs, err)
	}
	cfg, err = loadConfig(configFlags{file: path, blobs: "s3://from-flag?presign=true"}, mapEnv(map[string]string{"BERTH_BLOBS": "s3://from-env"}))
	if err != nil || cfg.Blobs != "s3://from-flag?presign=true" {
		t.Fatalf("flag: %q, %v", cfg.Blobs, err)
	}
	for _, bad := range []string{"/srv/blobs", "gs://bucket", "s3://AKIA:secret@bucket", "s3://b", "s3://bucket?color=red"} {
		_, err := loadConfig(configFlags{blobs: bad}, mapEnv(nil))
		if !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("--blobs %s: %v, want invalid", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && strings.Contains(bad, "secret") {
			t.Errorf("--blobs %s: the error repeats the credential: %v", bad, err)
		}
	}
}

// With no blobs setting the blob store is the storage folder of the data folder.
func TestOpenBlobStoreDefaultIsDisk(t *testing.T) {
	cfg := defaultConfig()
	cfg.Data = t.TempDir()
	bs, err := openBlobStore(t.Context(), cfg, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bs.(*disk.Store); !ok {
		t.Fatalf("default blob store is %T, want *disk.Store", bs)
	}
}

// berth serve on PostgreSQL and S3 needs no data folder but for the first
// admin's credentials: it creates it, and no storage folder.
func TestServeOnPostgresAndS3(t *testing.T) {
	dsn := pgSchema(t)
	gw := s3test.Start(t)
	env := pgEnv(dsn)
	env["BERTH_BLOBS"] = gw.URL(gw.Bucket(t))
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = gw.Getenv("AWS_ACCESS_KEY_ID"), gw.Getenv("AWS_SECRET_ACCESS_KEY")
	dir := filepath.Join(t.TempDir(), "not-yet")
	s := startServeEnv(t, env, dir)
	s.admin(t)
	if _, err := os.Stat(filepath.Join(dir, "storage")); !os.IsNotExist(err) {
		t.Errorf("serve on S3 made a storage folder: %v", err)
	}
	resp, body := s.do(t, "POST", "/v2/team/app/blobs/uploads/?digest="+sha256Digest([]byte("hello")), map[string]string{"Content-Type": "application/octet-stream"}, []byte("hello"))
	if resp.StatusCode != 201 {
		t.Fatalf("monolithic upload: %d %s", resp.StatusCode, body)
	}
	s.stop(t)
	if strings.Contains(s.stderr.String(), s3test.SecretKey) {
		t.Error("the log holds the S3 secret key")
	}
}
