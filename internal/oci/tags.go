package oci

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth"
)

// maxPage bounds one page of tags or repositories.
const maxPage = 10000

// tags lists a repository's tags in lexical order, n at a time after last.
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
func (h *Handler) tags(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	tags, err := h.Meta.FindTags(r.Context(), rt.Repo, last, fetchCount(n))
	if berth.IsCode(err, berth.CodeNameUnknown) {
		return berth.Errorf(berth.CodeNameUnknown, "repository %s does not exist", rt.Repo)
	} else if err != nil {
		return err
	}
	tags, more := trimPage(tags, n)
	if more {
		setNextLink(w, "/v2/"+rt.Repo+"/tags/list", n, tags[len(tags)-1])
	}
	return writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.Repo, tags})
}

// catalog lists repositories in lexical order, n at a time after last.
// https://distribution.github.io/distribution/spec/api/#catalog
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	repos, err := h.visibleRepositories(r, rt.Caller, last, fetchCount(n))
	if err != nil {
		return err
	}
	repos, more := trimPage(repos, n)
	if more {
		setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
	}
	return writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// visibleRepositories returns up to n repositories after last (n < 0: all)
// that the caller may see: every one with catalog on the registry, else those
// its roles let it read.
func (h *Handler) visibleRepositories(r *http.Request, caller *berth.Caller, last string, n int) ([]string, error) {
	ctx := r.Context()
	if h.Guard == nil {
		return h.Meta.FindRepositories(ctx, last, n)
	}
	const batch = 1000
	var out []string
	for n < 0 || len(out) < n {
		repos, err := h.Meta.FindRepositories(ctx, last, batch)
		if err != nil {
			return nil, err
		}
		for _, repo := range repos {
			if h.Guard.Listable(ctx, caller, repo) && (n < 0 || len(out) < n) {
				out = append(out, repo)
			}
		}
		if len(repos) < batch {
			break
		}
		last = repos[len(repos)-1]
	}
	return out, nil
}

// pageParams reads n and last; n is -1 when absent.
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", berth.Errorf(berth.CodeInvalid, "n=%q is not a non-negative page size", v)
		}
		n = min(n, maxPage)
	}
	return n, q.Get("last"), nil
}

// fetchCount asks the store for one more than a page, to learn whether another
// page follows.
func fetchCount(n int) int {
	if n < 0 {
		return -1
	}
	return n + 1
}

func trimPage(items []string, n int) ([]string, bool) {
	if items == nil {
		items = []string{}
	}
	if n >= 0 && len(items) > n {
		return items[:n], n > 0
	}
	return items, false
}

func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
