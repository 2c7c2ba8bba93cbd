package s3

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

// parseFailure is a transport that answers one request of operation op (the
// skip+1th) as versitygw answers a request it could not parse, without
// sending it, and sends every other request to the service.
type parseFailure struct {
	op     string
	skip   int
	body   string // the 400's body
	status string // the status line's words after the code, "Bad Request" when empty

	mu   sync.Mutex
	seen int
	hit  int
}

func (f *parseFailure) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	inject := false
	if operation(r) == f.op {
		inject = f.seen == f.skip
		f.seen++
	}
	if inject {
		f.hit++
	}
	f.mu.Unlock()
	if !inject {
		return http.DefaultTransport.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	status := "400 Bad Request"
	if f.status != "" {
		status = "400 " + f.status
	}
	return &http.Response{
		Status: status, StatusCode: http.StatusBadRequest, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Connection": {"close"}, "Content-Type": {"text/plain; charset=utf-8"}},
		Body:    io.NopCloser(strings.NewReader(f.body)),
		Request: r,
	}, nil
}

// A request the service could not parse was not carried out, so the store
// sends it again, and the upload, its commit and a stat succeed; an answer
// naming an S3 error, or a request whose body cannot be had again, is the
// caller's failure as before.
func TestUnparsedRequestSentAgain(t *testing.T) {
	const unparsed = "An error occurred when parsing the HTTP request."
	const s3Error = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>no</Message></Error>`
	for _, tc := range []struct {
		name     string
		size     int
		fault    *parseFailure
		wantFail bool
	}{
		{name: "marker", fault: &parseFailure{op: "PutObject", body: unparsed}},
		{name: "commit's listing", fault: &parseFailure{op: "ListObjects", skip: 1, body: unparsed}},
		{name: "commit's copy", fault: &parseFailure{op: "CopyObject", body: unparsed}},
		{name: "stat, a bare 400", fault: &parseFailure{op: "HeadObject", body: ""}},
		{name: "other words in the status line", fault: &parseFailure{op: "PutObject", body: unparsed, status: "BAD REQUEST"}},
		{name: "a small append, sent from memory", fault: &parseFailure{op: "PutObject", skip: 1, body: unparsed}},
		{name: "an S3 error is kept", fault: &parseFailure{op: "CopyObject", body: s3Error}, wantFail: true},
		// A body streamed from the client cannot be had again.
		{name: "a streamed append fails", size: smallWrite + 1, fault: &parseFailure{op: "PutObject", skip: 1, body: unparsed}, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fault
			cfg := config(t)
			cfg.transport = f
			s := openStore(t, cfg)
			size := tc.size
			if size == 0 {
				size = 1000
			}
			data := randomBytes(29, size)
			d := berth.DigestOf(berth.SHA256, data)
			err := flow(t, s, d, data)
			if f.hit != 1 {
				t.Fatalf("the fault was injected %d times, want 1: the flow never sent a %s", f.hit, f.op)
			}
			if tc.wantFail {
				if err == nil {
					t.Fatal("the flow succeeded, want the injected 400 to fail it")
				}
				return
			}
			if err != nil {
				t.Fatalf("the flow failed on one unparsed %s: %v", f.op, err)
			}
		})
	}
}

// flow uploads data in one append, commits it as d and stats d.
func flow(t *testing.T, s *Store, d berth.Digest, data []byte) error {
	ctx := t.Context()
	if err := s.CreateUpload(ctx, "u"); err != nil {
		return err
	}
	if _, err := s.AppendUpload(ctx, "u", 0, &berth.SizedReader{R: bytes.NewReader(data), N: int64(len(data))}); err != nil {
		return err
	}
	if _, err := s.CommitUpload(ctx, "u", d); err != nil {
		return err
	}
	info, err := s.Stat(ctx, d)
	if err == nil && info.Size != int64(len(data)) {
		t.Errorf("stat: size %d, want %d", info.Size, len(data))
	}
	return err
}

// closeSpy records, for the requests it carries to the service, whether
// each chunk-signed PUT and each other request asked to close its
// connection.
type closeSpy struct {
	mu                   sync.Mutex
	chunked, chunkedKept int
	other, otherClosed   int
}

func (c *closeSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		c.chunked++
		if !r.Close {
			c.chunkedKept++
		}
	} else {
		c.other++
		if r.Close {
			c.otherClosed++
		}
	}
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// Over plain http every PUT is chunk-signed, and each closes its connection
// after the answer, so that no request after it on the same connection can
// be read from what the service left of its body; the other requests keep
// theirs.
func TestChunkSignedRequestsCloseTheirConnection(t *testing.T) {
	spy := &closeSpy{}
	cfg := config(t)
	cfg.transport = spy
	s := openStore(t, cfg)
	data := randomBytes(31, smallWrite*3)
	if err := flow(t, s, berth.DigestOf(berth.SHA256, data), data); err != nil {
		t.Fatal(err)
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if spy.chunked == 0 || spy.other == 0 {
		t.Fatalf("saw %d chunk-signed and %d other requests, want some of each (is the test store on http?)", spy.chunked, spy.other)
	}
	if spy.chunkedKept != 0 {
		t.Errorf("%d of %d chunk-signed requests kept their connection, want none", spy.chunkedKept, spy.chunked)
	}
	if spy.otherClosed != 0 {
		t.Errorf("%d of %d other requests closed their connection, want none", spy.otherClosed, spy.other)
	}
}

// roundTrips answers each request with the next of its answers, and counts.
type roundTrips struct {
	answers []*http.Response
	sent    int
}

func (r *roundTrips) RoundTrip(req *http.Request) (*http.Response, error) {
	a := r.answers[r.sent]
	r.sent++
	a.Request = req
	return a, nil
}

func answer(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
}

// The transport's own rules: only idempotent requests without a body are sent
// again, only an answer naming no S3 error is marked, and an answer's body
// reads whole whatever its length.
func TestServiceTransportRules(t *testing.T) {
	long := strings.Repeat("x", maxErrorBody+10)
	for _, tc := range []struct {
		name       string
		method     string
		body       io.Reader
		first      *http.Response
		wantSent   int
		wantCode   string
		wantStatus int
		wantBody   string
	}{
		{name: "GET sent again", method: "GET", first: answer(400, "not parsed"), wantSent: 2, wantStatus: 200, wantBody: "ok"},
		{name: "POST not sent again", method: "POST", first: answer(400, "not parsed"), wantSent: 1, wantCode: unparsedCode, wantStatus: 400, wantBody: "not parsed"},
		{name: "PUT with a body not sent again", method: "PUT", body: strings.NewReader("data"), first: answer(400, ""), wantSent: 1, wantCode: unparsedCode, wantStatus: 400},
		{name: "an S3 error is kept", method: "GET", first: answer(400, "<Error><Code>InvalidArgument</Code></Error>"), wantSent: 1, wantStatus: 400, wantBody: "<Error><Code>InvalidArgument</Code></Error>"},
		{name: "a long body reads whole", method: "POST", first: answer(400, long), wantSent: 1, wantCode: unparsedCode, wantStatus: 400, wantBody: long},
		{name: "other answers pass", method: "GET", first: answer(404, "<Error><Code>NoSuchKey</Code></Error>"), wantSent: 1, wantStatus: 404, wantBody: "<Error><Code>NoSuchKey</Code></Error>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &roundTrips{answers: []*http.Response{tc.first, answer(200, "ok")}}
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1/b/k", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != nil {
				req.GetBody = nil // as minio-go sends a body: once
			}
			resp, err := serviceTransport{next: next}.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if next.sent != tc.wantSent || resp.StatusCode != tc.wantStatus || resp.Header.Get("X-Minio-Error-Code") != tc.wantCode {
				t.Errorf("sent %d, answer %d with code %q; want %d, %d, %q", next.sent, resp.StatusCode, resp.Header.Get("X-Minio-Error-Code"), tc.wantSent, tc.wantStatus, tc.wantCode)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body of %d bytes, want %d", len(body), len(tc.wantBody))
			}
		})
	}
}
