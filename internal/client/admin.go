package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// ListKeys returns the server's signing keys, oldest first.
func (c *Client) ListKeys(ctx context.Context) (api.KeyList, error) {
	var l api.KeyList
	err := c.do(ctx, http.MethodGet, "/keys", nil, nil, &l)
	return l, err
}

// RotateKeys adds a new signing key on the server and retires the current one.
func (c *Client) RotateKeys(ctx context.Context) (api.KeyList, error) {
	var l api.KeyList
	err := c.do(ctx, http.MethodPost, "/keys/rotate", nil, nil, &l)
	return l, err
}

// VerifyAudit checks the server's audit chain; audit_tampered names the
// first event that does not verify.
func (c *Client) VerifyAudit(ctx context.Context) (api.AuditVerification, error) {
	var v api.AuditVerification
	err := c.do(ctx, http.MethodGet, "/audit/verify", nil, nil, &v)
	return v, err
}

// Audit returns one page of the audit log; q holds GET /api/v1/audit's
// filters (since, until, principal, repository, result, code, action,
// after, limit).
func (c *Client) Audit(ctx context.Context, q url.Values) (api.AuditPage, error) {
	var p api.AuditPage
	err := c.do(ctx, http.MethodGet, "/audit", q, nil, &p)
	return p, err
}

// Collect runs a garbage collection on the server, calling progress with
// each step the server reports, and returns its report. It is not bounded by
// the client's timeout, only by ctx: a collection takes as long as it takes.
func (c *Client) Collect(ctx context.Context, opts api.GCOptions, progress func(api.GCProgress)) (api.GCReport, error) {
	q := url.Values{}
	if opts.DryRun {
		q.Set("dry_run", "true")
	}
	if opts.Grace > 0 {
		q.Set("grace", opts.Grace.String())
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := c.send(ctx, &hc, http.MethodPost, "/gc", q, nil)
	if err != nil {
		return api.GCReport{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxResponse)
	for sc.Scan() {
		var line api.GCLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return api.GCReport{}, fmt.Errorf("POST /gc: the answer of %s is not what berth sends: %w", c.base, err)
		}
		switch {
		case line.Progress != nil:
			if progress != nil {
				progress(*line.Progress)
			}
		case line.Report != nil:
			return *line.Report, nil
		case line.Error != nil:
			e := &berth.Error{Code: line.Error.Code, Message: line.Error.Message, Hint: line.Error.Hint}
			if line.Error.RequestID != "" {
				e.WithDetail("request_id", line.Error.RequestID)
			}
			if line.Error.Explain != "" {
				e.WithDetail(berth.DetailExplain, line.Error.Explain)
			}
			return api.GCReport{}, e
		}
	}
	if err := sc.Err(); err != nil {
		return api.GCReport{}, fmt.Errorf("POST /gc: read the answer of %s: %w", c.base, err)
	}
	return api.GCReport{}, fmt.Errorf("POST /gc: %s ended the answer before the report (the server may have stopped)", c.base)
}
