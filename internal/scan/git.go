package scan

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth"
)

// IsGitRepository reports whether dir is the top of a git work tree or a
// bare repository.
func IsGitRepository(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return true
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--is-bare-repository").Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// ScanHistory scans every blob reachable from any ref (branches, tags,
// remote-tracking refs, stash) of the git repository at repo: what was
// committed, even if a later commit removed it. Each finding names the path
// and the oldest commit that added the content holding it (Commit, with
// Commits when several did), and File is repo joined with that path. Blobs
// over opt.MaxFileSize are noted in Result.Skipped; binary blobs are counted
// in Stats.Binary. Objects no ref reaches (dangling, reflog only) are not
// scanned.
//
// It runs the git command: rev-list --all --objects lists the blobs, one
// cat-file --batch streams them to the workers, and only when something was
// found does log --all --raw say which commits added those blobs where.
func ScanHistory(ctx context.Context, repo string, opt Options) (Result, error) {
	s := newScanner(opt)
	if out, err := gitOutput(ctx, repo, "rev-parse", "--git-dir"); err != nil {
		return Result{}, fmt.Errorf("%s is not a git repository: %w", repo, err)
	} else if len(out) == 0 {
		return Result{}, fmt.Errorf("%s is not a git repository", repo)
	}
	if out, err := gitOutput(ctx, repo, "rev-list", "--all", "--count"); err == nil {
		n, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		s.stats.commits.Store(n)
	}
	blobs, paths, err := listBlobs(ctx, repo, s)
	if err != nil {
		return Result{}, err
	}
	s.stats.total.Store(int64(len(blobs)))
	stop := s.progress()
	err = s.catBlobs(ctx, repo, blobs)
	stop()
	if err != nil {
		return Result{}, err
	}
	if len(s.findings) > 0 {
		if err := s.attribute(ctx, repo, paths); err != nil {
			return Result{}, err
		}
	}
	return s.result(), nil
}

// gitOutput runs git in repo and returns its stdout; an error holds its
// stderr.
func gitOutput(ctx context.Context, repo string, args ...string) ([]byte, error) {
	cmd := gitCommand(ctx, repo, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, gitError(args[0], err, &stderr)
	}
	return out, nil
}

func gitCommand(ctx context.Context, repo string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	return cmd
}

func gitError(what string, err error, stderr *bytes.Buffer) error {
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		return fmt.Errorf("git %s: %w: %s", what, err, msg)
	}
	return fmt.Errorf("git %s: %w", what, err)
}

// listBlobs returns the id of every reachable blob no larger than the size
// limit, and a path of each (the first rev-list met it at). Larger blobs are
// noted as skipped.
func listBlobs(ctx context.Context, repo string, s *scanner) ([]string, map[string]string, error) {
	filter := fmt.Sprintf("--filter=combine:object:type=blob+blob:limit=%d", s.opt.MaxFileSize+1)
	cmd := gitCommand(ctx, repo, "rev-list", "--all", "--objects", filter, "--filter-print-omitted")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("git rev-list: %w", err)
	}
	var blobs []string
	paths := map[string]string{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "~"); ok {
			s.skip(repo+"@"+id, fmt.Sprintf("blob larger than %s", berth.FormatBytes(s.opt.MaxFileSize)))
			continue
		}
		id, path, ok := strings.Cut(line, " ")
		if !ok {
			continue // a commit: the type filter leaves some in the listing
		}
		if _, seen := paths[id]; !seen {
			paths[id] = path
			blobs = append(blobs, id)
		}
	}
	if err := sc.Err(); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("git rev-list: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, nil, gitError("rev-list", err, &stderr)
	}
	return blobs, paths, nil
}

// blob is one blob's content on its way to a worker; buf returns to the pool.
type blob struct {
	id  string
	buf *[]byte
	n   int
}

// catBlobs streams the blobs through one git cat-file --batch to the
// workers. Findings are kept under the blob's id until attribute names them.
func (s *scanner) catBlobs(ctx context.Context, repo string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := gitCommand(ctx, repo, "cat-file", "--batch")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	go func() {
		w := bufio.NewWriterSize(stdin, 64<<10)
		for _, id := range ids {
			if _, err := w.WriteString(id + "\n"); err != nil {
				break
			}
		}
		_ = w.Flush()
		_ = stdin.Close()
	}()

	pool := sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	jobs := make(chan blob, 4*s.opt.Workers)
	var wg sync.WaitGroup
	for range s.opt.Workers {
		wg.Go(func() {
			var ms []match
			for b := range jobs {
				data := (*b.buf)[:b.n]
				if isBinary(data) {
					s.stats.binary.Add(1)
				} else {
					ms = s.scanBuffer(b.id, data, ms, nil)
				}
				pool.Put(b.buf)
			}
		})
	}
	readErr := func() error {
		r := bufio.NewReaderSize(stdout, 1<<20)
		for range ids {
			header, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("git cat-file: read: %w", err)
			}
			f := strings.Fields(header)
			if len(f) == 2 && f[1] == "missing" {
				continue // a promisor object of a partial clone, not fetched
			}
			if len(f) != 3 {
				return fmt.Errorf("git cat-file: unexpected header %q", strings.TrimSpace(header))
			}
			size, err := strconv.Atoi(f[2])
			if err != nil {
				return fmt.Errorf("git cat-file: unexpected header %q", strings.TrimSpace(header))
			}
			bp := pool.Get().(*[]byte)
			if cap(*bp) < size+1 {
				*bp = make([]byte, size+1)
			}
			buf := (*bp)[:size+1] // the content and its trailing newline
			if _, err := io.ReadFull(r, buf); err != nil {
				return fmt.Errorf("git cat-file: read %s: %w", f[0], err)
			}
			if f[1] != "blob" {
				pool.Put(bp)
				continue
			}
			select {
			case jobs <- blob{id: f[0], buf: bp, n: size}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		cancel()
		_ = cmd.Wait()
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", readErr, msg)
		}
		return readErr
	}
	if err := cmd.Wait(); err != nil {
		return gitError("cat-file", err, &stderr)
	}
	return nil
}

// introduction is a commit that added a blob at a path.
type introduction struct {
	commit string
	time   int64
	seq    int // position in git log's output; later is older on equal times
	path   string
}

// attribute replaces each finding, kept under its blob id, by one finding
// per path that blob was added at, naming the commits that added it there.
// One git log --all --raw walks the history; merges are shown as combined
// diffs (-c), so content that only a merge introduced is attributed to it.
func (s *scanner) attribute(ctx context.Context, repo string, paths map[string]string) error {
	wanted := map[string][]introduction{}
	for _, f := range s.findings {
		wanted[f.File] = nil
	}
	cmd := gitCommand(ctx, repo, "log", "--all", "--raw", "--no-abbrev", "--no-renames", "-c", "-z", "--format=%x01%H %ct")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git log: %w", err)
	}
	r := bufio.NewReaderSize(out, 1<<20)
	var commit string
	var when int64
	var pending string // the blob of a raw entry whose path comes next
	seq := 0
	for {
		tok, err := r.ReadString(0)
		if err != nil && !errors.Is(err, io.EOF) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("git log: read: %w", err)
		}
		tok = strings.TrimSuffix(tok, "\x00")
		if pending != "" {
			seq++
			wanted[pending] = append(wanted[pending], introduction{commit, when, seq, tok})
			pending = ""
		} else {
			tok = strings.TrimLeft(tok, "\n")
			switch {
			case strings.HasPrefix(tok, "\x01"):
				h, t, _ := strings.Cut(tok[1:], " ")
				commit = h
				when, _ = strconv.ParseInt(t, 10, 64)
			case strings.HasPrefix(tok, ":"):
				if id := rawResult(tok); id != "" {
					if _, ok := wanted[id]; ok {
						pending = id
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return gitError("log", err, &stderr)
	}

	var out2 []Finding
	for _, f := range s.findings {
		id := f.File
		intros := wanted[id]
		if len(intros) == 0 {
			f.File, f.Blob = filepath.Join(repo, paths[id]), id
			out2 = append(out2, f)
			continue
		}
		slices.SortFunc(intros, func(a, b introduction) int {
			return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.time, b.time), cmp.Compare(b.seq, a.seq))
		})
		for i := 0; i < len(intros); {
			j := i
			var commits []string
			for ; j < len(intros) && intros[j].path == intros[i].path; j++ {
				if !slices.Contains(commits, intros[j].commit) {
					commits = append(commits, intros[j].commit)
				}
			}
			g := f
			g.File, g.Blob, g.Commit = filepath.Join(repo, intros[i].path), id, commits[0]
			if len(commits) > 1 {
				g.Commits = commits
			}
			out2 = append(out2, g)
			i = j
		}
	}
	s.findings = out2
	return nil
}

// rawResult returns the blob a raw diff entry (":old new oldid newid M", or
// "::m1 m2 m id1 id2 id M" for a merge) leaves at its path, or "" when it
// deletes the path.
func rawResult(meta string) string {
	n := len(meta) - len(strings.TrimLeft(meta, ":"))
	f := strings.Fields(meta[n:])
	if len(f) != 2*(n+1)+1 {
		return ""
	}
	id := f[2*n+1]
	if strings.Trim(id, "0") == "" {
		return ""
	}
	return id
}
