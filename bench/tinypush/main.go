// Command tinypush pushes many OCI image layouts to a registry from one
// process, some at a time, for the tiny-image figure of bench/run.sh.
//
//	tinypush -dir DIR -count 200 -parallel 8 -ref HOST/bench/tiny-1-%d:latest
//
// DIR/0 … DIR/COUNT-1 are layouts written by bench/mkimage; image i goes to
// the reference -ref with %d replaced by i. Each push is what one `crane push`
// process does, with the same library (go-containerregistry's remote.Write):
// its own connections, its own ping and, against a registry with token
// authentication, its own token exchange with the credentials of the docker
// config (DOCKER_CONFIG), so every image is an independent client as a CI job
// would be. What it leaves out is the start of a process per image (8 to 39 ms
// of CPU for crane on the machines the bench has run on), which would
// otherwise bound the run on a 2-core machine and hide the servers'
// difference.
//
// It prints the images pushed per second of the pushes, for the record; the
// bench times the whole command itself.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	dir := flag.String("dir", "", "folder of layouts DIR/0 … DIR/COUNT-1 (required)")
	count := flag.Int("count", 0, "images to push (required)")
	parallel := flag.Int("parallel", 8, "pushes at a time")
	ref := flag.String("ref", "", "reference with %d for the image number, such as 127.0.0.1:5000/bench/tiny-%d:latest (required)")
	flag.Parse()
	if *dir == "" || *count <= 0 || *parallel <= 0 || !strings.Contains(*ref, "%d") {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	if err := pushAll(*dir, *count, *parallel, *ref); err != nil {
		fmt.Fprintln(os.Stderr, "tinypush:", err)
		os.Exit(1)
	}
	fmt.Printf("%.1f images/s\n", float64(*count)/time.Since(start).Seconds())
}

// pushAll pushes the images parallel at a time and returns the first error.
func pushAll(dir string, count, parallel int, ref string) error {
	next := make(chan int)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := pushOne(filepath.Join(dir, strconv.Itoa(i)), strings.ReplaceAll(ref, "%d", strconv.Itoa(i))); err != nil {
					errs <- fmt.Errorf("image %d: %w", i, err)
					return
				}
			}
		}()
	}
	var first error
feed:
	for i := 0; i < count; i++ {
		select {
		case next <- i:
		case first = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		select {
		case first = <-errs:
		default:
		}
	}
	return first
}

// pushOne pushes the one image of the layout at path to ref, over connections
// of its own that it closes when done, as a separate client process would.
func pushOne(path, ref string) error {
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	index, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return err
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return err
	}
	if len(manifest.Manifests) != 1 {
		return fmt.Errorf("%s holds %d images, want 1", path, len(manifest.Manifests))
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	return remote.Write(tag, img, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(transport))
}
