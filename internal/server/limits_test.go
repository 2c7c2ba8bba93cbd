package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/server"
)

// readAll answers with the size of the body it read.
var readAll = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
		return
	}
	fmt.Fprintf(w, "%d", n)
})

// dial opens a raw connection to ts from 127.0.0.2, an address no other
// connection of the test comes from.
func dial(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c within 5 s, reading
// and dropping whatever it answered first.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func TestHeaderBlockIsBounded(t *testing.T) {
	ts := start(t, map[string]http.Handler{"/echo": echoID})
	resp, _ := ts.get(t, "/echo", map[string]string{"X-Big": strings.Repeat("a", 100<<10)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: status %d, want 431", resp.StatusCode)
	}
	resp, _ = ts.get(t, "/echo", map[string]string{"X-Big": strings.Repeat("a", 32<<10)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("32 KiB of headers: status %d, want 200", resp.StatusCode)
	}
}

// A body sent one byte at a time, without credentials, no longer holds its
// connection for ever: the body deadline cuts it.
func TestSlowBodyIsCut(t *testing.T) {
	ts := start(t, map[string]http.Handler{"/read": readAll}, func(c *server.Config) {
		c.BodyTimeout = 200 * time.Millisecond
	})
	c := dial(t, ts)
	fmt.Fprintf(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
	if !closedByServer(t, c) {
		t.Fatal("the connection of a stalled body was still open after 5 s; the body timeout is 200 ms")
	}
}

// A handler that authorized a large body gives it an idle timeout instead:
// a body that keeps arriving is read past the body timeout.
func TestExtendedBodyDeadlineFollowsProgress(t *testing.T) {
	ts := start(t, map[string]http.Handler{
		"/upload": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = server.ExtendBodyDeadline(w, r.Body, 2*time.Second)
			readAll.ServeHTTP(w, r)
		}),
		"/read": readAll,
	}, func(c *server.Config) { c.BodyTimeout = 100 * time.Millisecond })
	for _, tc := range []struct {
		path string
		want int
	}{{"/upload", http.StatusOK}, {"/read", http.StatusRequestTimeout}} {
		pr, pw := io.Pipe()
		go func() {
			for range 3 {
				_, _ = pw.Write([]byte("chunk"))
				<-time.After(150 * time.Millisecond) // past the body timeout, within the idle one
			}
			pw.Close()
		}()
		req, err := http.NewRequest(http.MethodPost, ts.url+tc.path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 15
		resp, err := ts.client.Do(req)
		if err != nil {
			if tc.want == http.StatusRequestTimeout {
				continue // the server may close before answering
			}
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d (%s), want %d", tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

// One address may hold only so many connections no request proved a
// credential on; a connection whose request authenticated no longer counts.
func TestUnauthenticatedConnectionsPerAddress(t *testing.T) {
	ts := start(t, map[string]http.Handler{
		"/login": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			berth.Authenticated(r.Context())
			_, _ = io.WriteString(w, "ok")
		}),
	}, func(c *server.Config) { c.UnauthenticatedPerAddress = 2 })
	first, _ := dial(t, ts), dial(t, ts)
	// The client may open its connections before the server accepted them:
	// a request on the first makes sure both were counted.
	r := bufio.NewReader(first)
	fmt.Fprintf(first, "GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The first connection authenticated: a third fits beside the second.
	third := dial(t, ts)
	fmt.Fprintf(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(third), nil); err != nil {
		t.Fatalf("third connection, after the first authenticated: %v", err)
	} else {
		resp.Body.Close()
	}
	// Two unauthenticated now (second and third): a fourth is closed.
	fourth := dial(t, ts)
	if !closedByServer(t, fourth) {
		t.Fatal("a third unauthenticated connection from one address stayed open; the bound is 2")
	}
}
