package scan

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth"
)

// Finding is one credential found. It never holds the credential: Excerpt is
// its first few characters (what a berth secret's hint shows) followed by
// "…", and Fingerprint a hash of its kind and value that a baseline matches.
type Finding struct {
	// File is the path as scanned: under the PATH given for files, and
	// PATH joined with the path in the commit for history.
	File string `json:"file"`
	// Line and Column are 1-based; Column counts Unicode code points.
	Line   int  `json:"line"`
	Column int  `json:"column"`
	Kind   Kind `json:"kind"`
	// Excerpt is the redacted value: a prefix and "…".
	Excerpt string `json:"excerpt"`
	// Commit is, for a finding in history, the oldest commit that added the
	// content holding it at File; empty for a file of a work tree.
	Commit string `json:"commit,omitempty"`
	// Commits lists every commit that added that content at File, oldest
	// first, when there are several (the same file committed on two branches).
	Commits []string `json:"commits,omitempty"`
	// Blob is the git object the finding is in, for history.
	Blob string `json:"blob,omitempty"`
	// Fingerprint is the hex SHA-256 of kind and value, truncated to 128
	// bits: the same credential anywhere has the same fingerprint.
	Fingerprint string `json:"fingerprint"`

	value string
}

// Secret returns the credential itself, for the one use that needs it:
// revoking a berth client secret.
func (f Finding) Secret() string { return f.value }

// String is the text output's line: file:line:column kind excerpt [commit].
func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d:%d %s %s", f.File, f.Line, f.Column, f.Kind, f.Excerpt)
	if f.Commit != "" {
		s += " (commit " + short(f.Commit) + ")"
	}
	return s
}

func short(commit string) string { return commit[:min(12, len(commit))] }

// Fingerprint returns the fingerprint of a credential of kind k with value v.
func Fingerprint(k Kind, v string) string {
	h := sha256.New()
	h.Write([]byte(k))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// excerpt redacts v: enough of its start to recognise it and nothing an
// attacker can use.
func excerpt(k Kind, v string) string {
	n := 8 // brt_3kXa, as a berth secret's hint; ghp_abcd; AKIAABCD
	switch k {
	case KindPrivateKey:
		if i := bytes.IndexByte([]byte(v[5:]), '-'); i >= 0 {
			n = 5 + i + 5 // the whole BEGIN line, which holds no secret
		}
	case KindGitHubFineGrained:
		n = len(githubPATPrefix) + 4
	case KindGitLabToken:
		n = len(glpat) + 4
	case KindAzureClientSecret:
		n = 6 // abc8Q~
	case KindJWT:
		n = 10
	case KindDockerConfigAuth:
		n = 4
	}
	return v[:min(n, len(v)/2)] + "…"
}

// DefaultMaxFileSize is the size above which a file or blob is skipped.
const DefaultMaxFileSize = 10 << 20

// ProgressInterval is the shortest time between two Progress calls.
const ProgressInterval = 250 * time.Millisecond

// Options tune a scan. The zero value is ready to use.
type Options struct {
	// MaxFileSize skips larger files and blobs, with a note in
	// Result.Skipped (DefaultMaxFileSize when zero).
	MaxFileSize int64
	// Workers is how many buffers are scanned at once (GOMAXPROCS when zero).
	Workers int
	// Progress, when set, is called from one goroutine at most every
	// ProgressInterval while a scan runs, and once at its end.
	Progress func(Stats)
}

// Stats counts what a scan read.
type Stats struct {
	Files    int64 `json:"files"` // files, or blobs for history
	Bytes    int64 `json:"bytes"`
	Findings int64 `json:"findings"`
	// Binary counts the binary files and blobs (a NUL byte in their first
	// 8000 bytes) that were not scanned.
	Binary int64 `json:"binary_skipped"`
	// Commits is how many commits a history scan covered.
	Commits int64 `json:"commits,omitempty"`
	// Total is, for history, how many blobs there are to scan; 0 when not
	// known in advance (a directory walk).
	Total int64 `json:"-"`
}

// Skipped is a file or blob that was not scanned, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Result is what a scan found.
type Result struct {
	Findings []Finding `json:"findings"`
	Skipped  []Skipped `json:"skipped"`
	Stats    Stats     `json:"scanned"`
}

// scanner runs the buffers of one scan through a pool of workers and gathers
// their findings.
type scanner struct {
	opt   Options
	stats struct{ files, bytes, findings, commits, binary, total atomic.Int64 }

	mu       sync.Mutex
	findings []Finding
	skipped  []Skipped
}

func newScanner(opt Options) *scanner {
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = DefaultMaxFileSize
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	return &scanner{opt: opt}
}

func (s *scanner) skip(path, reason string) {
	s.mu.Lock()
	s.skipped = append(s.skipped, Skipped{path, reason})
	s.mu.Unlock()
}

// progress calls opt.Progress every ProgressInterval until stop is closed,
// then once more; the returned function stops it and waits.
func (s *scanner) progress() (stop func()) {
	if s.opt.Progress == nil {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.opt.Progress(s.snapshot())
			case <-done:
				s.opt.Progress(s.snapshot())
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}

func (s *scanner) snapshot() Stats {
	return Stats{Files: s.stats.files.Load(), Bytes: s.stats.bytes.Load(),
		Findings: s.stats.findings.Load(), Commits: s.stats.commits.Load(),
		Binary: s.stats.binary.Load(), Total: s.stats.total.Load()}
}

// scanBuffer scans one buffer and keeps what it finds under name; origin,
// when not nil, is called on each finding before it is kept.
func (s *scanner) scanBuffer(name string, buf []byte, ms []match, origin func(*Finding)) []match {
	s.stats.files.Add(1)
	s.stats.bytes.Add(int64(len(buf)))
	ms = detect(buf, ms[:0])
	if len(ms) == 0 {
		return ms
	}
	slices.SortFunc(ms, func(a, b match) int { return cmp.Compare(a.start, b.start) })
	out := make([]Finding, 0, len(ms))
	line, lineStart, pos := 1, 0, 0
	for _, m := range ms {
		for {
			k := bytes.IndexByte(buf[pos:m.start], '\n')
			if k < 0 {
				break
			}
			line++
			pos += k + 1
			lineStart = pos
		}
		v := string(buf[m.start:m.end])
		f := Finding{File: name, Line: line, Column: utf8.RuneCount(buf[lineStart:m.start]) + 1, Kind: m.kind,
			Excerpt: excerpt(m.kind, v), Fingerprint: Fingerprint(m.kind, v), value: v}
		if origin != nil {
			origin(&f)
		}
		out = append(out, f)
	}
	s.stats.findings.Add(int64(len(out)))
	s.mu.Lock()
	s.findings = append(s.findings, out...)
	s.mu.Unlock()
	return ms
}

func (s *scanner) result() Result {
	slices.SortFunc(s.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Commit, b.Commit))
	})
	slices.SortFunc(s.skipped, func(a, b Skipped) int { return cmp.Compare(a.Path, b.Path) })
	r := Result{Findings: s.findings, Skipped: s.skipped, Stats: s.snapshot()}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Skipped == nil {
		r.Skipped = []Skipped{}
	}
	return r
}

// binarySniff is how much of a file's start is looked at for a NUL byte, the
// test git itself uses to call a file binary.
const binarySniff = 8000

func isBinary(b []byte) bool { return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0 }

// ScanFiles scans each path: a file, or a directory walked recursively.
// Inside a directory it skips .git (the repository's internals: ScanHistory
// reads those), symbolic links and other non-regular files, binary files
// (a NUL byte in the first 8000; counted in Stats.Binary) and files over
// opt.MaxFileSize (noted in Result.Skipped). A path that cannot be read is an
// error; a file inside a directory that cannot be read is noted and skipped.
func ScanFiles(ctx context.Context, paths []string, opt Options) (Result, error) {
	s := newScanner(opt)
	stop := s.progress()
	jobs := make(chan string, 4*s.opt.Workers)
	var wg sync.WaitGroup
	for range s.opt.Workers {
		wg.Go(func() {
			var buf []byte
			var ms []match
			for path := range jobs {
				buf, ms = s.scanFile(path, buf, ms)
			}
		})
	}
	err := walk(ctx, paths, jobs)
	close(jobs)
	wg.Wait()
	stop()
	if err != nil {
		return Result{}, err
	}
	return s.result(), nil
}

func walk(ctx context.Context, paths []string, jobs chan<- string) error {
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("scan %s: %w", root, err)
		}
		if !info.IsDir() {
			jobs <- root
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err != nil {
				if path == root {
					return err
				}
				return nil // an unreadable directory below: WalkDir skips it
			}
			if d.Name() == ".git" && path != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil // a worktree's or submodule's .git file
			}
			if d.Type().IsRegular() {
				jobs <- path
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("scan %s: %w", root, err)
		}
	}
	return nil
}

// scanFile reads path into buf (reused between files) and scans it.
func (s *scanner) scanFile(path string, buf []byte, ms []match) ([]byte, []match) {
	f, err := os.Open(path)
	if err != nil {
		s.skip(path, "cannot be read: "+readError(err))
		return buf, ms
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		s.skip(path, "cannot be read: "+readError(err))
		return buf, ms
	}
	if size := info.Size(); size > s.opt.MaxFileSize {
		s.skip(path, fmt.Sprintf("larger than %s (%s)", berth.FormatBytes(s.opt.MaxFileSize), berth.FormatBytes(size)))
		return buf, ms
	}
	// Read one byte more than the size, to notice a file that grew.
	n := int(info.Size()) + 1
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		s.skip(path, "cannot be read: "+readError(err))
		return buf, ms
	}
	data := buf[:got]
	if isBinary(data) {
		s.stats.binary.Add(1)
		return buf, ms
	}
	return buf, s.scanBuffer(path, data, ms, nil)
}

// readError is err without the path a skipped entry already names.
func readError(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
