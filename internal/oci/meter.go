package oci

import (
	"io"
	"net/http"
)

// Meter counts the bytes the registry moves; metrics.Metrics implements it.
// Each method is called once per request, after the transfer, with what
// actually moved (a client that hangs up midway counts what arrived or left).
type Meter interface {
	// UploadBytesReceived counts request body bytes appended to uploads:
	// chunks, last chunks and monolithic pushes, whether or not they end as
	// a blob.
	UploadBytesReceived(n int64)
	// BlobBytesWritten counts the bytes of blobs committed from uploads.
	BlobBytesWritten(n int64)
	// BlobBytesRead counts blob bytes sent in GET responses (200 or 206).
	BlobBytesRead(n int64)
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countingWriter counts the body bytes of a successful response. It keeps
// io.ReaderFrom, so that http.ServeContent still sends a file with sendfile.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
	}
	c.n += n
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// sent returns the body bytes of a 200 or 206 response, else 0 (a 416's text).
func (c *countingWriter) sent() int64 {
	if c.status == http.StatusOK || c.status == http.StatusPartialContent {
		return c.n
	}
	return 0
}
