// Command berth is an OCI registry with its own identity provider, made for CI
// pipelines. Everything it does lives in internal/cli. Run under the name
// docker-credential-berth (a symbolic link), it is docker's credential helper;
// as berth-kubelet-credential-provider, the kubelet's image credential provider.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	switch strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") {
	case "docker-credential-berth":
		code = cli.RunCredentialHelper(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	case "berth-kubelet-credential-provider":
		code = cli.RunKubeletCredentialProvider(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	default:
		code = cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	}
	stop()
	os.Exit(code)
}
