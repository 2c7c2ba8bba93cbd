package cli

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// mapEnv is a getenv backed by a map, so tests never read the process environment.
// mapEnv is the environment m; PATH, unless m sets it, is the folder of the
// test credential helper (main_test.go).
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok || k != "PATH" {
			return v
		}
		return testHelperPATH
	}
}

// writeConfig writes a YAML configuration file in a fresh folder and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "berth.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(configFlags{}, mapEnv(nil))
	if err != nil {
		t.Fatalf("loadConfig with nothing set: %v", err)
	}
	want := Config{
		Addr:            "127.0.0.1:5000",
		Data:            "./berth-data",
		Log:             LogConfig{Level: "info", Format: "text"},
		GC:              GCConfig{Interval: time.Hour, Grace: berth.DefaultGCGrace},
		Auth:            AuthConfig{Service: "berth", TokenLifetime: 15 * time.Minute, MaxSecretLifetime: 365 * 24 * time.Hour, UserSessionLifetime: 12 * time.Hour, MaxTokenLifetime: 365 * 24 * time.Hour},
		Audit:           AuditConfig{Retention: 90 * 24 * time.Hour},
		Federation:      FederationConfig{SessionLifetime: 6 * time.Hour},
		Webhooks:        WebhooksConfig{ScheduleInterval: 15 * time.Minute},
		MaxManifestSize: 4 << 20,
		ShutdownTimeout: 30 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFile(t *testing.T) {
	path := writeConfig(t, `
addr: 0.0.0.0:6000
data: /srv/berth
log:
  level: debug
  format: json
gc:
  interval: 15m
  grace: 2h
max_manifest_size: 8388608
shutdown_timeout: 5s
url: https://registry.example.com
auth:
  service: registry.example.com
  token_lifetime: 5m
  max_secret_lifetime: 720h
audit:
  retention: 48h
federation:
  session_lifetime: 8h
webhooks:
  schedule_interval: 1h
`)
	want := Config{
		Addr:            "0.0.0.0:6000",
		Data:            "/srv/berth",
		URL:             "https://registry.example.com",
		Log:             LogConfig{Level: "debug", Format: "json"},
		GC:              GCConfig{Interval: 15 * time.Minute, Grace: 2 * time.Hour},
		Auth:            AuthConfig{Service: "registry.example.com", TokenLifetime: 5 * time.Minute, MaxSecretLifetime: 720 * time.Hour, UserSessionLifetime: 12 * time.Hour, MaxTokenLifetime: 365 * 24 * time.Hour},
		Audit:           AuditConfig{Retention: 48 * time.Hour},
		Federation:      FederationConfig{SessionLifetime: 8 * time.Hour},
		Webhooks:        WebhooksConfig{ScheduleInterval: time.Hour},
		MaxManifestSize: 8 << 20,
		ShutdownTimeout: 5 * time.Second,
	}
	t.Run("flag", func(t *testing.T) {
		cfg, err := loadConfig(configFlags{file: path}, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("from --config:\n got %+v\nwant %+v", cfg, want)
		}
	})
	t.Run("BERTH_CONFIG", func(t *testing.T) {
		cfg, err := loadConfig(configFlags{}, mapEnv(map[string]string{"BERTH_CONFIG": path}))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("from BERTH_CONFIG:\n got %+v\nwant %+v", cfg, want)
		}
	})
	t.Run("flag wins over BERTH_CONFIG", func(t *testing.T) {
		other := writeConfig(t, "addr: 127.0.0.1:7000\n")
		cfg, err := loadConfig(configFlags{file: path}, mapEnv(map[string]string{"BERTH_CONFIG": other}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != want.Addr {
			t.Errorf("addr = %q, want %q from the --config file", cfg.Addr, want.Addr)
		}
	})
	t.Run("partial file keeps other defaults", func(t *testing.T) {
		cfg, err := loadConfig(configFlags{file: writeConfig(t, "log:\n  level: warn\n")}, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		d := defaultConfig()
		d.Log.Level = "warn"
		if !reflect.DeepEqual(cfg, d) {
			t.Errorf("got %+v\nwant %+v", cfg, d)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		cfg, err := loadConfig(configFlags{file: writeConfig(t, "")}, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg, defaultConfig()) {
			t.Errorf("an empty file changed the defaults: %+v", cfg)
		}
	})
}

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, "addr: 127.0.0.1:6001\ndata: /from/file\n")
	env := map[string]string{"BERTH_CONFIG": path, "BERTH_ADDR": "127.0.0.1:6002", "BERTH_DATA": "/from/env"}

	cfg, err := loadConfig(configFlags{}, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:6002" || cfg.Data != "/from/env" {
		t.Errorf("environment must win over the file: addr=%q data=%q", cfg.Addr, cfg.Data)
	}

	cfg, err = loadConfig(configFlags{addr: "127.0.0.1:6003", data: "/from/flag"}, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:6003" || cfg.Data != "/from/flag" {
		t.Errorf("flags must win over the environment: addr=%q data=%q", cfg.Addr, cfg.Data)
	}

	// One source may set one value and leave the other to the next source down.
	cfg, err = loadConfig(configFlags{data: "/from/flag"}, mapEnv(map[string]string{"BERTH_CONFIG": path, "BERTH_ADDR": "127.0.0.1:6002"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:6002" || cfg.Data != "/from/flag" {
		t.Errorf("mixed sources: addr=%q data=%q, want the env addr and the flag data", cfg.Addr, cfg.Data)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
	}{
		{"unknown top-level key", "adress: 127.0.0.1:5000\n"},
		{"unknown nested key", "log:\n  levle: debug\n"},
		{"not yaml", "addr: [unclosed\n"},
		{"log level", "log:\n  level: verbose\n"},
		{"log format", "log:\n  format: xml\n"},
		{"max_manifest_size below 4 MiB", "max_manifest_size: 4194303\n"},
		{"max_manifest_size zero", "max_manifest_size: 0\n"},
		{"negative gc interval", "gc:\n  interval: -1h\n"},
		{"negative gc grace", "gc:\n  grace: -1s\n"},
		{"duration that does not parse", "gc:\n  grace: soon\n"},
		{"zero shutdown timeout", "shutdown_timeout: 0s\n"},
		{"empty addr", "addr: \"\"\n"},
		{"empty data", "data: \"\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(configFlags{file: writeConfig(t, tc.yaml)}, mapEnv(nil))
			if code := berth.ErrorCode(err); code != berth.CodeInvalid {
				t.Errorf("code = %q (err %v), want %q", code, err, berth.CodeInvalid)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := loadConfig(configFlags{file: filepath.Join(t.TempDir(), "absent.yaml")}, mapEnv(nil))
		if code := berth.ErrorCode(err); code != berth.CodeInvalid {
			t.Errorf("code = %q (err %v), want %q", code, err, berth.CodeInvalid)
		}
	})
}

func TestConfigBoundsAccepted(t *testing.T) {
	// The limits are inclusive: exactly 4 MiB and zero durations are valid.
	path := writeConfig(t, "max_manifest_size: 4194304\ngc:\n  interval: 0s\n  grace: 0s\n")
	cfg, err := loadConfig(configFlags{file: path}, mapEnv(nil))
	if err != nil {
		t.Fatalf("valid bounds refused: %v", err)
	}
	if cfg.MaxManifestSize != 4<<20 || cfg.GC.Interval != 0 || cfg.GC.Grace != 0 {
		t.Errorf("got %+v", cfg)
	}
	for _, level := range []string{"debug", "info", "warn", "error"} {
		if _, err := loadConfig(configFlags{file: writeConfig(t, "log:\n  level: "+level+"\n")}, mapEnv(nil)); err != nil {
			t.Errorf("log level %s refused: %v", level, err)
		}
	}
}

func TestConfigPostgres(t *testing.T) {
	const dsn = "postgres://berth:hunter2@db.internal:5432/berth?sslmode=require"
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))

	t.Run("default is SQLite", func(t *testing.T) {
		cfg, err := loadConfig(configFlags{}, mapEnv(nil))
		if err != nil || cfg.DB != "" || cfg.Postgres() {
			t.Fatalf("default db = %q (%v), want SQLite", cfg.DB, err)
		}
	})
	t.Run("env, file and flag", func(t *testing.T) {
		env := map[string]string{"BERTH_DB": dsn, "BERTH_KEY_ENCRYPTION_KEY": kek}
		cfg, err := loadConfig(configFlags{}, mapEnv(env))
		if err != nil || cfg.DB != dsn || !cfg.Postgres() || cfg.KeyEncryptionKey != kek {
			t.Fatalf("from the environment: %+v, %v", cfg, err)
		}
		path := writeConfig(t, "db: postgres://file@h/db\nkey_encryption_key: "+kek+"\n")
		cfg, err = loadConfig(configFlags{file: path, db: "postgresql://flag@h/db"}, mapEnv(nil))
		if err != nil || cfg.DB != "postgresql://flag@h/db" {
			t.Fatalf("the flag must win over the file: %q, %v", cfg.DB, err)
		}
	})
	t.Run("postgres without a key encryption key", func(t *testing.T) {
		_, err := loadConfig(configFlags{db: dsn}, mapEnv(nil))
		e := berth.AsError(err)
		if e == nil || e.Code != berth.CodeInvalid || !strings.Contains(e.Hint, "openssl rand -base64 32") {
			t.Fatalf("err = %v, want invalid with a hint to run openssl rand -base64 32", err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Error("the error shows the database password")
		}
	})
	for _, bad := range []string{"c2hvcnQ=", "not base64!"} {
		_, err := loadConfig(configFlags{db: dsn}, mapEnv(map[string]string{"BERTH_KEY_ENCRYPTION_KEY": bad}))
		if e := berth.AsError(err); e == nil || !strings.Contains(e.Hint, "openssl rand -base64 32") {
			t.Errorf("key %q: err = %v, want a refusal with the openssl hint", bad, err)
		}
	}
	t.Run("not postgres", func(t *testing.T) {
		_, err := loadConfig(configFlags{db: "mysql://u:hunter2@h/db"}, mapEnv(nil))
		if berth.ErrorCode(err) != berth.CodeInvalid || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("err = %v, want invalid without the password", err)
		}
	})
	if got := RedactDSN(dsn); strings.Contains(got, "hunter2") || !strings.Contains(got, "db.internal") {
		t.Errorf("RedactDSN = %q", got)
	}
	if got := RedactDSN("postgres://u@h/db?password=hunter2"); strings.Contains(got, "hunter2") {
		t.Errorf("RedactDSN = %q", got)
	}
}
