package s3

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want Config
	}{
		{"s3://blobs", Config{Bucket: "blobs", Endpoint: "s3.amazonaws.com", PresignExpiry: DefaultPresignExpiry, PartSize: DefaultPartSize}},
		{"s3://my.bucket-1/berth/prod/?region=eu-west-1", Config{Bucket: "my.bucket-1", Prefix: "berth/prod", Endpoint: "s3.amazonaws.com", Region: "eu-west-1", PresignExpiry: DefaultPresignExpiry, PartSize: DefaultPartSize}},
		{"s3://b01/p?endpoint=127.0.0.1:9000&region=us-east-1&insecure=true&path_style=true&presign=true&presign_expiry=1h&part_size=16777216&pointers=true",
			Config{Bucket: "b01", Prefix: "p", Endpoint: "127.0.0.1:9000", Region: "us-east-1", Insecure: true, PathStyle: true, Presign: true, PresignExpiry: time.Hour, PartSize: 16 << 20, Pointers: true}},
	}
	for _, tc := range tests {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

func TestParseURLInvalid(t *testing.T) {
	bad := []string{
		"",
		"blobs",
		"https://blobs/x",
		"s3:blobs",
		"s3://",
		"s3://ab",
		"s3://Upper",
		"s3://-bucket",
		"s3://bucket:9000",
		"s3://AKIA:secret@bucket",
		"s3://bucket/a//b",
		"s3://bucket/a/../b",
		"s3://bucket?endpoint=",
		"s3://bucket?endpoint=http://host:9000",
		"s3://bucket?insecure=maybe",
		"s3://bucket?presign_expiry=8d",
		"s3://bucket?presign_expiry=200h",
		"s3://bucket?part_size=1024",
		"s3://bucket?region=a&region=b",
		"s3://bucket?secret=x",
		"s3://bucket#frag",
	}
	for _, u := range bad {
		_, err := ParseURL(u)
		if !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParseURL(%q) = %v, want code invalid", u, err)
			continue
		}
		if strings.Contains(err.Error(), "secret") && strings.Contains(u, "secret@") {
			t.Errorf("ParseURL(%q) repeats the secret: %v", u, err)
		}
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN":     "token",
	}
	c := CredentialsFromEnv(func(k string) string { return env[k] })
	if c.AccessKeyID != env["AWS_ACCESS_KEY_ID"] || c.SecretAccessKey != env["AWS_SECRET_ACCESS_KEY"] || c.SessionToken != "token" {
		t.Fatalf("CredentialsFromEnv = %#v", c)
	}
	cfg := Config{Bucket: "b", Credentials: c}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("blob store", slog.Any("config", cfg))
	if !strings.Contains(logged.String(), "access key AKIAEXAMPLE") {
		t.Errorf("the JSON log does not name the access key: %s", logged.String())
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), logged.String()} {
		if strings.Contains(s, env["AWS_SECRET_ACCESS_KEY"]) || strings.Contains(s, "token") {
			t.Fatalf("formatting shows a credential: %s", s)
		}
	}
}

// TestNewRefusesWrongSecret: a secret the service refuses fails New with
// invalid and a hint, naming the access key but never the secret.
func TestNewRefusesWrongSecret(t *testing.T) {
	cfg := config(t)
	cfg.Credentials.SecretAccessKey = "not-the-secret-" + strings.Repeat("x", 24)
	_, err := New(t.Context(), cfg)
	if !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("New with a wrong secret: %v, want invalid", err)
	}
	var be *berth.Error
	if !errors.As(err, &be) || be.Hint == "" {
		t.Fatalf("no hint: %#v", err)
	}
	if strings.Contains(err.Error(), cfg.Credentials.SecretAccessKey) || !strings.Contains(err.Error(), cfg.Credentials.AccessKeyID) {
		t.Fatalf("the error should name the key, never the secret: %v", err)
	}
}
