// Command mkimage writes random OCI images as OCI image layouts, for the
// benchmarks in bench/run.sh (`crane push DIR REF` pushes such a directory).
//
//	mkimage -dir DIR -layers 50 -size 1048576          one image in DIR
//	mkimage -dir DIR -count 200 -layers 1 -size 1024   DIR/0 … DIR/199
//
// Each layer is an uncompressed tar (application/vnd.oci.image.layer.v1.tar)
// holding one file of -size random bytes, so layers do not compress and no
// client spends time compressing them. Content comes from a ChaCha8 stream
// seeded by -seed and the image and layer numbers; a run with another seed
// gives other digests.
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func main() {
	dir := flag.String("dir", "", "output directory (required)")
	layers := flag.Int("layers", 1, "layers per image")
	size := flag.Int64("size", 1<<20, "random bytes in each layer")
	count := flag.Int("count", 0, "write this many images into DIR/0, DIR/1, …; 0 writes one image into DIR")
	seed := flag.Uint64("seed", 1, "random seed")
	tag := flag.String("tag", "latest", "tag recorded in index.json")
	flag.Parse()
	if *dir == "" || *layers < 0 || *size < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *count == 0 {
		if err := writeImage(*dir, *tag, *seed, 0, *layers, *size); err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		return
	}
	for i := 0; i < *count; i++ {
		if err := writeImage(filepath.Join(*dir, strconv.Itoa(i)), *tag, *seed, uint64(i), *layers, *size); err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
	}
}

func writeImage(dir, tag string, seed, image uint64, layers int, size int64) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	var descs []descriptor
	var diffIDs []string
	for l := 0; l < layers; l++ {
		var key [32]byte
		binary.LittleEndian.PutUint64(key[0:], seed)
		binary.LittleEndian.PutUint64(key[8:], image)
		binary.LittleEndian.PutUint64(key[16:], uint64(l))
		rng := rand.NewChaCha8(key)
		d, err := writeBlob(dir, func(w io.Writer) error {
			tw := tar.NewWriter(w)
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("random-%d-%d", image, l), Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, rng, size); err != nil {
				return err
			}
			return tw.Close()
		})
		if err != nil {
			return err
		}
		d.MediaType = "application/vnd.oci.image.layer.v1.tar"
		descs = append(descs, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": append([]string{}, diffIDs...)},
		"history":      []any{},
	})
	if err != nil {
		return err
	}
	cfgDesc, err := writeBytes(dir, cfg)
	if err != nil {
		return err
	}
	cfgDesc.MediaType = "application/vnd.oci.image.config.v1+json"
	if descs == nil {
		descs = []descriptor{}
	}
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgDesc,
		"layers":        descs,
	})
	if err != nil {
		return err
	}
	manDesc, err := writeBytes(dir, man)
	if err != nil {
		return err
	}
	manDesc.MediaType = "application/vnd.oci.image.manifest.v1+json"
	manDesc.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manDesc},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
}

func writeBytes(dir string, b []byte) (descriptor, error) {
	return writeBlob(dir, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// writeBlob streams fill into a temporary file while hashing it and renames
// it to blobs/sha256/DIGEST.
func writeBlob(dir string, fill func(io.Writer) error) (descriptor, error) {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), ".tmp-")
	if err != nil {
		return descriptor{}, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h), h: h}
	if err := fill(cw); err != nil {
		f.Close()
		return descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return descriptor{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", sum)); err != nil {
		return descriptor{}, err
	}
	return descriptor{Digest: "sha256:" + sum, Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
