package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berth-dev/berth"
)

// The ConnectionStore tests, as the contract in connection.go of package
// berth states it. Where it leaves a choice open, the suite settles it:
//   - FindConnections and FindPermissionRequests return an empty slice, not an
//     error, when nothing matches (FindPermissionRequests also for an unknown
//     connection);
//   - CreateConnection returns not_found, changing nothing, when one of
//     c.Pipelines names no pipeline, as PermitPipeline does; a pipeline listed
//     twice is permitted once, at its first place;
//   - a connection reads back exactly as created: nil Intents and Pipelines
//     stay empty, and a connection permitting none has no Pipelines;
//   - RecordPermissionRequest records what it is given, also for a pipeline the
//     connection permits: deciding is the domain's;
//   - DeletePrincipal deletes the principal's connections, with their
//     permissions and requests.

// connectionN returns an enabled federated connection of principal p whose ID
// is made from n.
func connectionN(n int, name string, p berth.Principal, created int) berth.Connection {
	return berth.Connection{
		ID:          fmt.Sprintf("c1000000-0000-4000-8000-%012d", n),
		Name:        name,
		PrincipalID: p.ID,
		Auth:        berth.ConnectionFederated,
		Created:     at(created),
	}
}

func createConnection(t *testing.T, s berth.MetadataStore, c berth.Connection) berth.Connection {
	t.Helper()
	must(t, s.CreateConnection(ctx(t), c))
	return c
}

func findConnection(t *testing.T, s berth.MetadataStore, id string) berth.Connection {
	t.Helper()
	c, err := s.FindConnectionByID(ctx(t), id)
	must(t, err)
	return c
}

func wantConnection(t *testing.T, what string, got, want berth.Connection) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.PrincipalID != want.PrincipalID || got.Auth != want.Auth ||
		got.AllPipelines != want.AllPipelines || got.SecretID != want.SecretID || got.Disabled != want.Disabled ||
		!got.Created.Equal(want.Created) || !slices.Equal(got.Pipelines, want.Pipelines) ||
		!slices.EqualFunc(got.Intents, want.Intents, func(x, y berth.ConnectionIntent) bool {
			return x.Repository == y.Repository && slices.Equal(x.Actions, y.Actions)
		}) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func connectionNames(t *testing.T, s berth.MetadataStore, f berth.ConnectionFilter) []string {
	t.Helper()
	cs, err := s.FindConnections(ctx(t), f)
	must(t, err)
	if cs == nil {
		t.Fatalf("FindConnections(%+v) returned nil, want an empty slice", f)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func findRequests(t *testing.T, s berth.MetadataStore, connectionID string) []berth.PermissionRequest {
	t.Helper()
	rs, err := s.FindPermissionRequests(ctx(t), connectionID)
	must(t, err)
	if rs == nil {
		t.Fatalf("FindPermissionRequests(%s) returned nil, want an empty slice", connectionID)
	}
	return rs
}

// requestPipelines returns the pipeline ids of the requests pending on the
// connection, in the store's order.
func requestPipelines(t *testing.T, s berth.MetadataStore, connectionID string) []string {
	t.Helper()
	var ids []string
	for _, r := range findRequests(t, s, connectionID) {
		ids = append(ids, r.PipelineID)
	}
	return ids
}

func wantRequest(t *testing.T, what string, got, want berth.PermissionRequest) {
	t.Helper()
	if got.ConnectionID != want.ConnectionID || got.PipelineID != want.PipelineID || got.Count != want.Count ||
		got.Run != want.Run || !got.First.Equal(want.First) || !got.Last.Equal(want.Last) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// connectionFixture is a principal, three pipelines and a connection of the
// principal that permits none of them.
type connectionFixture struct {
	principal      berth.Principal
	web, api, db   berth.Pipeline
	conn           berth.Connection
	unknownPipe    string
	unknownConnRef string
}

func newConnectionFixture(t *testing.T, s berth.MetadataStore) connectionFixture {
	t.Helper()
	f := connectionFixture{
		principal:      createPrincipal(t, s, principalN(1, "ci-web", 0)),
		web:            createPipeline(t, s, pipelineN(1, "web", 0)),
		api:            createPipeline(t, s, pipelineN(2, "api", 0)),
		db:             createPipeline(t, s, pipelineN(3, "db", 0)),
		unknownPipe:    pipelineN(9, "ghost", 0).ID,
		unknownConnRef: connectionN(9, "ghost", berth.Principal{}, 0).ID,
	}
	f.conn = createConnection(t, s, connectionN(1, "deploy", f.principal, 0))
	return f
}

var connectionTests = []test{
	{"CreateAndFind", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		full := connectionN(2, "release", f.principal, 10)
		full.Auth = berth.ConnectionSecret
		full.SecretID = secretN(1, f.principal, 0, 0).ID
		full.Intents = []berth.ConnectionIntent{
			{Repository: "team/app", Actions: []string{"pull", "push"}},
			{Repository: "team/*", Actions: []string{"pull"}},
		}
		// The permitted order is kept, not sorted; a repeat counts once.
		full.Pipelines = []string{f.db.ID, f.web.ID, f.api.ID, f.web.ID}
		full.Disabled = true
		createConnection(t, s, full)
		full.Pipelines = []string{f.db.ID, f.web.ID, f.api.ID}
		all := connectionN(3, "all", f.principal, 20)
		all.AllPipelines = true
		createConnection(t, s, all)

		for _, want := range []berth.Connection{f.conn, full, all} {
			wantConnection(t, "FindConnectionByID "+want.Name, findConnection(t, s, want.ID), want)
			got, err := s.FindConnectionByName(ctx(t), want.Name)
			must(t, err)
			wantConnection(t, "FindConnectionByName "+want.Name, got, want)
		}
		_, err := s.FindConnectionByID(ctx(t), f.unknownConnRef)
		wantCode(t, "FindConnectionByID of an unknown id", err, berth.CodeNotFound)
		_, err = s.FindConnectionByName(ctx(t), "ghost")
		wantCode(t, "FindConnectionByName of an unknown name", err, berth.CodeNotFound)
	}},
	{"FindConnections", func(t *testing.T, s berth.MetadataStore) {
		wantStrings(t, "no connections", connectionNames(t, s, berth.ConnectionFilter{}), nil)
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		pipe := createPipeline(t, s, pipelineN(1, "web", 0))
		for i, name := range []string{"web-prod", "api", "web-dev", "0ps"} {
			owner := web
			if name == "api" {
				owner = api
			}
			c := connectionN(i+1, name, owner, i)
			c.Pipelines = []string{pipe.ID}
			createConnection(t, s, c)
		}
		wantStrings(t, "all, by name", connectionNames(t, s, berth.ConnectionFilter{}), []string{"0ps", "api", "web-dev", "web-prod"})
		wantStrings(t, "by principal", connectionNames(t, s, berth.ConnectionFilter{PrincipalID: web.ID}), []string{"0ps", "web-dev", "web-prod"})
		wantStrings(t, "by an unknown principal", connectionNames(t, s, berth.ConnectionFilter{PrincipalID: principalN(9, "x", 0).ID}), nil)
		cs, err := s.FindConnections(ctx(t), berth.ConnectionFilter{})
		must(t, err)
		for _, c := range cs {
			wantStrings(t, "pipelines of "+c.Name, c.Pipelines, []string{pipe.ID})
		}
	}},
	{"CreateWithUnknownPrincipalIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		ghost := principalN(2, "ghost", 0)
		wantCode(t, "CreateConnection", s.CreateConnection(ctx(t), connectionN(1, "deploy", ghost, 0)), berth.CodeNotFound)
		wantStrings(t, "connections", connectionNames(t, s, berth.ConnectionFilter{}), nil)
		// Nothing was stored: the name and id are still free.
		p := createPrincipal(t, s, principalN(1, "ci-web", 0))
		createConnection(t, s, connectionN(1, "deploy", p, 0))
	}},
	{"CreateWithUnknownPipelineIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		c := connectionN(2, "release", f.principal, 0)
		c.Pipelines = []string{f.web.ID, f.unknownPipe}
		wantCode(t, "CreateConnection", s.CreateConnection(ctx(t), c), berth.CodeNotFound)
		wantStrings(t, "connections", connectionNames(t, s, berth.ConnectionFilter{}), []string{"deploy"})
		c.Pipelines = []string{f.web.ID}
		createConnection(t, s, c)
		wantConnection(t, "created again", findConnection(t, s, c.ID), c)
	}},
	{"DuplicateIsConflict", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		sameName := connectionN(2, f.conn.Name, f.principal, 5)
		sameName.Pipelines = []string{f.web.ID}
		wantCode(t, "CreateConnection with an existing name", s.CreateConnection(ctx(t), sameName), berth.CodeConflict)
		sameID := connectionN(1, "release", f.principal, 5)
		sameID.Pipelines = []string{f.web.ID}
		wantCode(t, "CreateConnection with an existing id", s.CreateConnection(ctx(t), sameID), berth.CodeConflict)
		wantStrings(t, "connections after the refused creates", connectionNames(t, s, berth.ConnectionFilter{}), []string{"deploy"})
		// The refused creates permitted nothing either.
		wantConnection(t, "the first connection", findConnection(t, s, f.conn.ID), f.conn)
	}},
	{"UpdateEachField", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		other := createConnection(t, s, connectionN(2, "other", f.principal, 0))
		want := f.conn
		must(t, s.PermitPipeline(ctx(t), want.ID, f.web.ID))
		want.Pipelines = []string{f.web.ID}

		update := func(what string, u berth.ConnectionUpdate) {
			t.Helper()
			got, err := s.UpdateConnection(ctx(t), want.ID, u)
			must(t, err)
			wantConnection(t, what+": returned", got, want)
			wantConnection(t, what+": found", findConnection(t, s, want.ID), want)
		}
		update("nothing", berth.ConnectionUpdate{})
		want.Auth = berth.ConnectionSecret
		update("auth", berth.ConnectionUpdate{Auth: ptr(berth.ConnectionSecret)})
		want.SecretID = "50000000-0000-4000-8000-000000000007"
		update("secret id", berth.ConnectionUpdate{SecretID: ptr(want.SecretID)})
		// AllPipelines keeps the list: it is what applies once unset.
		want.AllPipelines = true
		update("all pipelines", berth.ConnectionUpdate{AllPipelines: ptr(true)})
		want.Disabled = true
		update("disabled", berth.ConnectionUpdate{Disabled: ptr(true)})
		want.Auth, want.SecretID, want.AllPipelines, want.Disabled = berth.ConnectionFederated, "", false, false
		update("all at once", berth.ConnectionUpdate{Auth: ptr(berth.ConnectionFederated), SecretID: ptr(""),
			AllPipelines: ptr(false), Disabled: ptr(false)})

		wantConnection(t, "another connection", findConnection(t, s, other.ID), other)
		_, err := s.UpdateConnection(ctx(t), f.unknownConnRef, berth.ConnectionUpdate{Disabled: ptr(true)})
		wantCode(t, "UpdateConnection of an unknown id", err, berth.CodeNotFound)
		_, err = s.UpdateConnection(ctx(t), f.unknownConnRef, berth.ConnectionUpdate{})
		wantCode(t, "an empty UpdateConnection of an unknown id", err, berth.CodeNotFound)
	}},
	{"PermitIsIdempotentAndRemovesRequest", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		other := createConnection(t, s, connectionN(2, "other", f.principal, 0))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.api.ID, Last: at(10)}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.db.ID, Last: at(11)}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: other.ID, PipelineID: f.api.ID, Last: at(12)}))

		must(t, s.PermitPipeline(ctx(t), f.conn.ID, f.api.ID))
		must(t, s.PermitPipeline(ctx(t), f.conn.ID, f.web.ID))
		must(t, s.PermitPipeline(ctx(t), f.conn.ID, f.api.ID))
		wantStrings(t, "permitted, in order", findConnection(t, s, f.conn.ID).Pipelines, []string{f.api.ID, f.web.ID})
		wantStrings(t, "requests left", requestPipelines(t, s, f.conn.ID), []string{f.db.ID})
		wantStrings(t, "requests on another connection", requestPipelines(t, s, other.ID), []string{f.api.ID})
		wantStrings(t, "permitted on another connection", findConnection(t, s, other.ID).Pipelines, nil)

		// Forbidden then permitted again, a pipeline goes to the end.
		must(t, s.ForbidPipeline(ctx(t), f.conn.ID, f.api.ID))
		must(t, s.PermitPipeline(ctx(t), f.conn.ID, f.db.ID))
		must(t, s.PermitPipeline(ctx(t), f.conn.ID, f.api.ID))
		wantStrings(t, "permitted after forbid and permit", findConnection(t, s, f.conn.ID).Pipelines, []string{f.web.ID, f.db.ID, f.api.ID})
		wantStrings(t, "no requests left", requestPipelines(t, s, f.conn.ID), nil)

		wantCode(t, "PermitPipeline on an unknown connection", s.PermitPipeline(ctx(t), f.unknownConnRef, f.web.ID), berth.CodeNotFound)
		wantCode(t, "PermitPipeline of an unknown pipeline", s.PermitPipeline(ctx(t), other.ID, f.unknownPipe), berth.CodeNotFound)
		wantStrings(t, "permitted on the other connection after the refusal", findConnection(t, s, other.ID).Pipelines, nil)
	}},
	{"DismissPermissionRequest", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.api.ID, Last: at(10)}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.db.ID, Last: at(11)}))
		must(t, s.DismissPermissionRequest(ctx(t), f.conn.ID, f.api.ID))
		wantStrings(t, "requests left after dismissing api's", requestPipelines(t, s, f.conn.ID), []string{f.db.ID})
		wantStrings(t, "a dismissed pipeline is not permitted", findConnection(t, s, f.conn.ID).Pipelines, nil)
		wantCode(t, "dismissing it again", s.DismissPermissionRequest(ctx(t), f.conn.ID, f.api.ID), berth.CodeNotFound)
		wantCode(t, "dismissing on an unknown connection", s.DismissPermissionRequest(ctx(t), f.unknownConnRef, f.db.ID), berth.CodeNotFound)
		// Its next attempt is a new request.
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.api.ID, Last: at(12)}))
		wantStrings(t, "after a new attempt", requestPipelines(t, s, f.conn.ID), []string{f.db.ID, f.api.ID})
	}},
	{"Forbid", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		for _, p := range []berth.Pipeline{f.web, f.api, f.db} {
			must(t, s.PermitPipeline(ctx(t), f.conn.ID, p.ID))
		}
		must(t, s.ForbidPipeline(ctx(t), f.conn.ID, f.api.ID))
		wantStrings(t, "after forbidding api", findConnection(t, s, f.conn.ID).Pipelines, []string{f.web.ID, f.db.ID})
		must(t, s.ForbidPipeline(ctx(t), f.conn.ID, f.api.ID))
		must(t, s.ForbidPipeline(ctx(t), f.conn.ID, f.unknownPipe))
		wantStrings(t, "after no-op forbids", findConnection(t, s, f.conn.ID).Pipelines, []string{f.web.ID, f.db.ID})
		wantCode(t, "ForbidPipeline on an unknown connection", s.ForbidPipeline(ctx(t), f.unknownConnRef, f.web.ID), berth.CodeNotFound)
		if _, err := s.FindPipelineByID(ctx(t), f.api.ID); err != nil {
			t.Errorf("the forbidden pipeline itself: %v", err)
		}
	}},
	{"RecordPermissionRequest", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.web.ID,
			Last: at(10), Run: "ci run 1"}))
		rs := findRequests(t, s, f.conn.ID)
		if len(rs) != 1 {
			t.Fatalf("requests after one attempt: %+v", rs)
		}
		// First is set from Last; Count starts at 1 whatever the caller says.
		wantRequest(t, "the first attempt", rs[0], berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.web.ID,
			First: at(10), Last: at(10), Count: 1, Run: "ci run 1"})

		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.web.ID,
			First: at(99), Last: at(20), Count: 7, Run: "ci run 2"}))
		must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.web.ID,
			Last: at(30)}))
		rs = findRequests(t, s, f.conn.ID)
		if len(rs) != 1 {
			t.Fatalf("requests after three attempts: %+v", rs)
		}
		wantRequest(t, "after three attempts", rs[0], berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.web.ID,
			First: at(10), Last: at(30), Count: 3, Run: ""})

		wantCode(t, "RecordPermissionRequest on an unknown connection",
			s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.unknownConnRef, PipelineID: f.web.ID, Last: at(40)}),
			berth.CodeNotFound)
		wantCode(t, "RecordPermissionRequest of an unknown pipeline",
			s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.unknownPipe, Last: at(40)}),
			berth.CodeNotFound)
		wantStrings(t, "requests after the refusals", requestPipelines(t, s, f.conn.ID), []string{f.web.ID})
		wantStrings(t, "requests on an unknown connection", requestPipelines(t, s, f.unknownConnRef), nil)
	}},
	{"FindPermissionRequestsOrderedByFirst", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		other := createConnection(t, s, connectionN(2, "other", f.principal, 0))
		record := func(c berth.Connection, p berth.Pipeline, n int) {
			t.Helper()
			must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c.ID, PipelineID: p.ID, Last: at(n)}))
		}
		record(f.conn, f.db, 20)
		record(f.conn, f.web, 30)
		record(f.conn, f.api, 10)
		record(f.conn, f.db, 40) // a later attempt does not move First
		record(other, f.web, 5)
		wantStrings(t, "by First", requestPipelines(t, s, f.conn.ID), []string{f.api.ID, f.db.ID, f.web.ID})
		wantStrings(t, "the other connection's", requestPipelines(t, s, other.ID), []string{f.web.ID})
		rs := findRequests(t, s, f.conn.ID)
		wantRequest(t, "db", rs[1], berth.PermissionRequest{ConnectionID: f.conn.ID, PipelineID: f.db.ID,
			First: at(20), Last: at(40), Count: 2})
	}},
	{"DeleteRemovesPermissionsAndRequests", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		other := createConnection(t, s, connectionN(2, "other", f.principal, 0))
		for _, c := range []berth.Connection{f.conn, other} {
			must(t, s.PermitPipeline(ctx(t), c.ID, f.web.ID))
			must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c.ID, PipelineID: f.api.ID, Last: at(10)}))
		}

		must(t, s.DeleteConnection(ctx(t), f.conn.ID))
		_, err := s.FindConnectionByID(ctx(t), f.conn.ID)
		wantCode(t, "FindConnectionByID after delete", err, berth.CodeNotFound)
		_, err = s.FindConnectionByName(ctx(t), f.conn.Name)
		wantCode(t, "FindConnectionByName after delete", err, berth.CodeNotFound)
		wantStrings(t, "requests of the deleted connection", requestPipelines(t, s, f.conn.ID), nil)
		wantCode(t, "DeleteConnection twice", s.DeleteConnection(ctx(t), f.conn.ID), berth.CodeNotFound)

		// The other connection keeps everything; the pipelines stay.
		wantStrings(t, "permitted on the other", findConnection(t, s, other.ID).Pipelines, []string{f.web.ID})
		wantStrings(t, "requests on the other", requestPipelines(t, s, other.ID), []string{f.api.ID})
		wantStrings(t, "pipelines", pipelineNames(t, s, berth.PipelineFilter{}), []string{"api", "db", "web"})

		// Created again with the same id, it starts with nothing.
		createConnection(t, s, f.conn)
		wantConnection(t, "created again", findConnection(t, s, f.conn.ID), f.conn)
		wantStrings(t, "requests of the new connection", requestPipelines(t, s, f.conn.ID), nil)
	}},
	{"DeletePrincipalDeletesItsConnections", func(t *testing.T, s berth.MetadataStore) {
		f := newConnectionFixture(t, s)
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		second := createConnection(t, s, connectionN(2, "release", f.principal, 0))
		kept := connectionN(3, "api", api, 0)
		kept.Pipelines = []string{f.web.ID}
		createConnection(t, s, kept)
		for _, c := range []berth.Connection{f.conn, second, kept} {
			must(t, s.PermitPipeline(ctx(t), c.ID, f.api.ID))
			must(t, s.RecordPermissionRequest(ctx(t), berth.PermissionRequest{ConnectionID: c.ID, PipelineID: f.db.ID, Last: at(10)}))
		}

		must(t, s.DeletePrincipal(ctx(t), f.principal.ID))
		wantStrings(t, "connections", connectionNames(t, s, berth.ConnectionFilter{}), []string{"api"})
		wantStrings(t, "connections of the deleted principal", connectionNames(t, s, berth.ConnectionFilter{PrincipalID: f.principal.ID}), nil)
		wantStrings(t, "requests of a deleted connection", requestPipelines(t, s, second.ID), nil)
		kept.Pipelines = []string{f.web.ID, f.api.ID}
		wantConnection(t, "another principal's connection", findConnection(t, s, kept.ID), kept)
		wantStrings(t, "its requests", requestPipelines(t, s, kept.ID), []string{f.db.ID})

		// The names and ids are free again.
		createPrincipal(t, s, principalN(1, "ci-web", 30))
		createConnection(t, s, f.conn)
		wantConnection(t, "a connection of the new principal", findConnection(t, s, f.conn.ID), f.conn)
	}},
}
