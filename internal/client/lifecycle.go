package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// SetRetention sets the retention rule on a scope, replacing the one there.
func (c *Client) SetRetention(ctx context.Context, req api.RetentionRequest) (berth.RetentionRule, error) {
	var r berth.RetentionRule
	err := c.do(ctx, http.MethodPost, "/retention", nil, req, &r)
	return r, err
}

// ListRetention returns the retention rules the caller may manage.
func (c *Client) ListRetention(ctx context.Context) ([]berth.RetentionRule, error) {
	var l api.RetentionList
	err := c.do(ctx, http.MethodGet, "/retention", nil, nil, &l)
	return l.Rules, err
}

// GetRetention returns the retention rule on scope.
func (c *Client) GetRetention(ctx context.Context, scope string) (berth.RetentionRule, error) {
	var r berth.RetentionRule
	err := c.do(ctx, http.MethodGet, "/retention/"+repoPath(scope), nil, nil, &r)
	return r, err
}

// DeleteRetention removes the retention rule on scope.
func (c *Client) DeleteRetention(ctx context.Context, scope string) error {
	return c.do(ctx, http.MethodDelete, "/retention/"+repoPath(scope), nil, nil, nil)
}

// RunRetention applies the retention rules to the repositories of scope (""
// for all), or with dryRun says what that would delete.
func (c *Client) RunRetention(ctx context.Context, scope string, dryRun bool) (api.RetentionRun, error) {
	var r api.RetentionRun
	err := c.do(ctx, http.MethodPost, "/retention/run", nil, api.RetentionRunRequest{Scope: scope, DryRun: dryRun}, &r)
	return r, err
}

// AddImmutable makes the tags matching pattern immutable on scope.
func (c *Client) AddImmutable(ctx context.Context, scope, pattern string) (berth.ImmutableRule, error) {
	var r berth.ImmutableRule
	err := c.do(ctx, http.MethodPost, "/immutable", nil, api.ImmutableRequest{Scope: scope, Tags: pattern}, &r)
	return r, err
}

// ListImmutable returns the immutable-tag rules the caller may manage.
func (c *Client) ListImmutable(ctx context.Context) ([]berth.ImmutableRule, error) {
	var l api.ImmutableList
	err := c.do(ctx, http.MethodGet, "/immutable", nil, nil, &l)
	return l.Rules, err
}

// RemoveImmutable removes the rule making pattern immutable on scope.
func (c *Client) RemoveImmutable(ctx context.Context, scope, pattern string) error {
	return c.do(ctx, http.MethodDelete, "/immutable", url.Values{"scope": {scope}, "tags": {pattern}}, nil, nil)
}

// SetQuota sets the quota on a scope, replacing the one there.
func (c *Client) SetQuota(ctx context.Context, req api.QuotaRequest) (api.QuotaStatus, error) {
	var q api.QuotaStatus
	err := c.do(ctx, http.MethodPost, "/quotas", nil, req, &q)
	return q, err
}

// ListQuotas returns the quotas the caller may manage, with their usage.
func (c *Client) ListQuotas(ctx context.Context) ([]api.QuotaStatus, error) {
	var l api.QuotaList
	err := c.do(ctx, http.MethodGet, "/quotas", nil, nil, &l)
	return l.Quotas, err
}

// RemoveQuota removes the quota on scope.
func (c *Client) RemoveQuota(ctx context.Context, scope string) error {
	return c.do(ctx, http.MethodDelete, "/quotas/"+repoPath(scope), nil, nil, nil)
}
