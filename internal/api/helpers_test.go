package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// creds are Basic credentials; the zero value sends none.
type creds struct{ user, secret string }

func adminCreds(s *apitest.Server) creds { return creds{s.Admin.ClientID, s.AdminSecret} }

// response is one answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request; body, when not nil, is sent as JSON (a string is
// sent as it is).
func call(t *testing.T, s *apitest.Server, c creds, method, path string, body any) response {
	t.Helper()
	return send(t, s, method, path, body, func(req *http.Request) {
		if c.user != "" {
			req.SetBasicAuth(c.user, c.secret)
		}
	})
}

// callBearer is call with an access token.
func callBearer(t *testing.T, s *apitest.Server, token, method, path string, body any) response {
	t.Helper()
	return send(t, s, method, path, body, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) })
}

// send sends one request, with the credentials auth sets.
func send(t *testing.T, s *apitest.Server, method, path string, body any, auth func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// ok decodes a success with the given status into out (when not nil).
func (r response) ok(t *testing.T, status int, out any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// fails asserts an error answer with code, the status of the code table, and
// the envelope {"error":{"code","message","hint"}}; it returns the entry.
func (r response) fails(t *testing.T, code berth.Code) map[string]any {
	t.Helper()
	var env map[string]map[string]any
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("status %d: body %q is not the error envelope: %v", r.status, r.body, err)
	}
	e, ok := env["error"]
	if !ok {
		t.Fatalf("status %d: body %s has no error", r.status, r.body)
	}
	if got := berth.Code(e["code"].(string)); got != code {
		t.Fatalf("code %q, want %q; body %s", got, code, r.body)
	}
	if want := berth.LookupCode(code).Status; r.status != want {
		t.Errorf("status %d for %s, want %d", r.status, code, want)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error %s has no message", r.body)
	}
	return e
}

// hint returns the error entry's hint.
func hint(e map[string]any) string { s, _ := e["hint"].(string); return s }

// fields returns the keys of a JSON object.
func fields(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func hasFields(t *testing.T, what string, m map[string]any, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := m[n]; !ok {
			t.Errorf("%s has no field %q: %v", what, n, m)
		}
	}
}
