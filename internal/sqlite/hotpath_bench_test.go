package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// BenchmarkFindBlobLink measures the store's part of a blob GET: the one
// query that says whether the repository holds the blob.
func BenchmarkFindBlobLink(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "berth.db"))
	defer db.Close()
	const blobs = 1000
	digests := make([]berth.Digest, blobs)
	for i := range digests {
		digests[i] = berth.DigestOf("", fmt.Appendf(nil, "blob %d", i))
		if err := db.LinkBlob(ctx, berth.BlobLink{Repository: fmt.Sprintf("team/app%d", i%10), Digest: digests[i], Size: 4096, Created: time.Unix(0, 0)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.FindBlobLink(ctx, fmt.Sprintf("team/app%d", i%10), digests[i%blobs]); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

// BenchmarkTinyPush measures the store's part of pushing a tiny image: an
// upload session created and deleted, two blob links (config and layer) and
// a tagged manifest referencing them.
func BenchmarkTinyPush(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "berth.db"))
	defer db.Close()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			repo := fmt.Sprintf("team/app%d", i%10)
			config := berth.DigestOf("", fmt.Appendf(nil, "config %d", i))
			layer := berth.DigestOf("", fmt.Appendf(nil, "layer %d", i))
			for _, d := range []berth.Digest{config, layer} {
				id := fmt.Sprintf("upload-%d-%s", i, d.Short())
				if err := db.CreateUploadSession(ctx, berth.UploadSession{ID: id, Repository: repo, Created: time.Unix(0, 0)}); err != nil {
					b.Fatal(err)
				}
				if err := db.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: 1024, Created: time.Unix(0, 0)}); err != nil {
					b.Fatal(err)
				}
				if err := db.DeleteUploadSession(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			content := fmt.Appendf(nil, `{"schemaVersion":2,"config":{"digest":%q},"layers":[{"digest":%q}]}`, config, layer)
			m := &berth.Manifest{
				Repository: repo,
				Digest:     berth.DigestOf("", content),
				MediaType:  "application/vnd.oci.image.manifest.v1+json",
				Content:    content,
				References: []berth.Reference{{Digest: config, Kind: berth.ReferenceBlob}, {Digest: layer, Kind: berth.ReferenceBlob}},
				Created:    time.Unix(0, 0),
			}
			if err := db.PutManifest(ctx, m, fmt.Sprintf("v%d", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
