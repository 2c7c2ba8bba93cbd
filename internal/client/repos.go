package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/internal/api"
)

// repoPath escapes each segment of a repository name, keeping its slashes.
func repoPath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// ListRepositories returns the repositories the caller may see, under
// namespace when it is not empty.
func (c *Client) ListRepositories(ctx context.Context, namespace string) ([]string, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	var l api.RepositoryList
	err := c.do(ctx, http.MethodGet, "/repositories", q, nil, &l)
	return l.Repositories, err
}

// GetRepository returns a repository's tags and manifests.
func (c *Client) GetRepository(ctx context.Context, name string) (api.RepositoryDetail, error) {
	var d api.RepositoryDetail
	err := c.do(ctx, http.MethodGet, "/repositories/"+repoPath(name), nil, nil, &d)
	return d, err
}

// DeleteRepository deletes a repository with its tags and manifests.
func (c *Client) DeleteRepository(ctx context.Context, name string) (api.DeletedRepository, error) {
	var d api.DeletedRepository
	err := c.do(ctx, http.MethodDelete, "/repositories/"+repoPath(name), nil, nil, &d)
	return d, err
}

// ListTags returns a repository's tags with their digests.
func (c *Client) ListTags(ctx context.Context, name string) (api.TagList, error) {
	var l api.TagList
	err := c.do(ctx, http.MethodGet, "/tags/"+repoPath(name), nil, nil, &l)
	return l, err
}

// DeleteTag deletes the tag of ref, NAME:TAG.
func (c *Client) DeleteTag(ctx context.Context, ref string) (api.Tag, error) {
	var t api.Tag
	err := c.do(ctx, http.MethodDelete, "/tags/"+repoPath(ref), nil, nil, &t)
	return t, err
}
