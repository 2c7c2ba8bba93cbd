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
// An answer 400 Bad Request whose body names no S3 error (no <Code> in it)
// says the service did not understand the request as one, so it did
// nothing. Such an answer is marked with the error code unparsedCode, which
// minio-go reports as the error's code (isUnparsed), whatever the status
// line's words. A GET, HEAD, PUT or DELETE without a body is then sent again,
// once; a create whose body is in memory is sent again by retryCreate; a POST,
// or a body streamed from a client, is not.
type serviceTransport struct{ next http.RoundTripper }

const (
	// unparsedCode is the error code given to an answer that says the
	// service could not parse the request.
	unparsedCode = "BerthRequestNotParsed"

	// maxErrorBody bounds what is read of a 400's body to look for an S3
	// error; the rest, if any, stays readable after it.
	maxErrorBody = 64 << 10
)

func (t serviceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") && !req.Close {
		req = req.Clone(req.Context())
		req.Close = true
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || !markUnparsed(resp) || !resendable(req) {
		return resp, err
	}
	second, err := t.next.RoundTrip(req)
	if err != nil {
		// The first answer says more than a failure to send the second.
		return resp, nil
	}
	resp.Body.Close()
	markUnparsed(second)
	return second, nil
}

// markUnparsed tells whether resp is a 400 whose body names no S3 error, and
// then marks it with unparsedCode. Either way resp's body reads as before.
func markUnparsed(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil || bytes.Contains(head, []byte("<Code>")) {
		return false
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Set("X-Minio-Error-Code", unparsedCode)
	return true
}

// resendable tells whether req may be sent again as it is: a request of an
// idempotent method without a body.
func resendable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}
