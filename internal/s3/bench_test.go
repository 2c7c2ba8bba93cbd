package s3

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/berth-dev/berth"
)

// Throughput through versitygw on loopback: what the store adds over the
// service (hashing, part buffering, the pipeline) and what one stream gets.

var benchSizes = []int{64 << 10, 4 << 20, 64 << 20}

func BenchmarkPut(b *testing.B) {
	s := newTestStore(b)
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			data := randomBytes(uint64(n), n)
			d := berth.DigestOf(berth.SHA256, data)
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := s.Put(b.Context(), d, int64(n), bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s := newTestStore(b)
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			data := randomBytes(uint64(n), n)
			d := berth.DigestOf(berth.SHA256, data)
			if _, err := s.Put(b.Context(), d, int64(n), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				rc, _, err := s.Open(b.Context(), d)
				if err != nil {
					b.Fatal(err)
				}
				if m, err := io.Copy(io.Discard, rc); err != nil || m != int64(n) {
					b.Fatalf("read %d bytes: %v", m, err)
				}
				rc.Close()
			}
		})
	}
}

// BenchmarkUpload is a chunked upload of 64 MiB in 4 chunks, committed: the
// path of a docker push of a large layer through the registry.
func BenchmarkUpload(b *testing.B) {
	s := newTestStore(b)
	const n, chunks = 64 << 20, 4
	data := randomBytes(99, n)
	d := berth.DigestOf(berth.SHA256, data)
	b.SetBytes(n)
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("bench-%d", i)
		if err := s.CreateUpload(b.Context(), id); err != nil {
			b.Fatal(err)
		}
		for c := range chunks {
			off := c * n / chunks
			if _, err := s.AppendUpload(b.Context(), id, int64(off), bytes.NewReader(data[off:off+n/chunks])); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.CommitUpload(b.Context(), id, d); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
