package s3

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// serviceTransport carries the store's requests with two rules for services
// that mishandle kept-alive connections.
//
// A request whose payload is signed chunk by chunk (aws-chunked, which
// minio-go sends for a PUT over plain http) closes its connection after the
// answer. Seen with versitygw 1.8 and --keep-alive under load: the request
// after such a PUT on the same connection failed to parse (a marker, a
// pointer or a HEAD of a commit refused with 400, and the client sent the
// whole blob again), as if the end of the chunked body had been left on the
// connection; over https (payloads unsigned), without keep-alive, or with
// this rule, it never did. It costs a connection per PUT over http, and
// nothing over https.
//
// A request answered 400 Bad Request without an S3 error in the body was not
// understood as a request, so the service did nothing: it is sent again,
// once, when it has no body or its body can be had again (GetBody). Every
// answer that names an S3 error code (<Code> in an XML body) is returned as
// it is, whatever its status. Creates whose body is in memory are sent again
// by retryCreate (isUnparsed).
type serviceTransport struct{ next http.RoundTripper }

// maxErrorBody bounds what is read of a 400's body to look for an S3 error.
const maxErrorBody = 64 << 10

func (t serviceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") && !req.Close {
		req = req.Clone(req.Context())
		req.Close = true
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	again, replayable := replay(req)
	if !replayable {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil || bytes.Contains(body, []byte("<Code>")) {
		return resp, nil
	}
	second, err := t.next.RoundTrip(again)
	if err != nil {
		// The first answer says more than a failure to send the second.
		return resp, nil
	}
	return second, nil
}

// replay returns a request to send again in place of req, and whether there
// is one: req itself when it has no body, else a copy with a new body.
func replay(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	again := req.Clone(req.Context())
	again.Body = body
	return again, true
}
